//! One size table for all of a model's tensors, and flat buffers that
//! follow it: parameters, gradients and the two Adam moments each live in
//! one allocation (llm.c's `malloc_and_point_parameters`).

use std::ops::Range;

/// A named tensor in the flat buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name, as in the checkpoint and the GGUF file.
    pub name: String,
    /// Its row-major shape, PyTorch order (`(out, in)` for a weight).
    pub shape: Vec<usize>,
    /// Where it starts in the flat buffer.
    pub offset: usize,
    /// Whether weight decay applies: to weight matrices and kernels, not
    /// to biases, norm scales or embeddings.
    pub decay: bool,
}

impl Entry {
    /// Element count.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its range in the flat buffer.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The size table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The tensors, in buffer order.
    pub entries: Vec<Entry>,
}

impl Layout {
    /// Appends a tensor; returns its offset. Tensors of two or more
    /// dimensions decay (weights, kernels); vectors (biases, norm scales)
    /// do not.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize]) -> usize {
        self.push_with(name, shape, shape.len() >= 2)
    }

    /// Appends a tensor that weight decay never touches (an embedding).
    pub fn push_no_decay(&mut self, name: impl Into<String>, shape: &[usize]) -> usize {
        self.push_with(name, shape, false)
    }

    fn push_with(&mut self, name: impl Into<String>, shape: &[usize], decay: bool) -> usize {
        let offset = self.total();
        self.entries.push(Entry {
            name: name.into(),
            shape: shape.to_vec(),
            offset,
            decay,
        });
        offset
    }
    /// Total elements.
    pub fn total(&self) -> usize {
        self.entries.last().map_or(0, |e| e.offset + e.len())
    }
    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}
