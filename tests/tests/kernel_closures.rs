//! No closure outside a `#[target_feature]` function of the runtime's
//! kernels calls an intrinsic.
//!
//! A closure inside a `#[target_feature]` function is compiled with its
//! features, but one inside a helper without the attribute (an
//! `#[inline(always)]` fold, say) is compiled without them, even when the
//! helper itself is inlined into a kernel: if the closure is not inlined
//! too, every intrinsic in it becomes a call. Whether it is depends on the
//! crate that instantiates it and on how the compiler splits that crate,
//! so it came and went with unrelated changes: in 9577773 such calls
//! (`array::from_fn` in the 16-row fold) were 41% of the text step's time.
//! The bits stay the same, so no other test sees it, and a small build of
//! the kernels alone does not reproduce it; hence this check of the
//! source. Helpers write loops, or `#[inline(always)]` functions.

use edgegen_tests::repo_root;
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Whether `name` is an intrinsic that needs a target feature: x86's
/// `_mm*` and Arm's dot products (`vdot*`); the rest of NEON is baseline
/// on aarch64.
fn intrinsic(name: &str) -> bool {
    name.starts_with("_mm") || name.starts_with("vdot")
}

/// Visits one function's body: records closures that name an intrinsic,
/// unless the function has a target feature; nested functions are
/// visited as functions of their own.
#[derive(Default)]
struct Finder {
    /// Functions seen, and how many had `#[target_feature]`.
    functions: usize,
    with_features: usize,
    /// `(function, intrinsic)` for each offending closure.
    found: Vec<(String, String)>,
    /// The function being visited and whether it has target features.
    current: Vec<(String, bool)>,
    /// Depth of closures around the current node.
    closures: usize,
}

impl Finder {
    fn function(&mut self, name: String, attrs: &[syn::Attribute], body: &syn::Block) {
        let tf = attrs.iter().any(|a| a.path().is_ident("target_feature"));
        self.functions += 1;
        self.with_features += tf as usize;
        let outer = std::mem::take(&mut self.closures);
        self.current.push((name, tf));
        self.visit_block(body);
        self.current.pop();
        self.closures = outer;
    }

    fn name_seen(&mut self, ident: &syn::Ident) {
        let name = ident.to_string();
        if self.closures > 0
            && intrinsic(&name)
            && let Some((f, false)) = self.current.last()
        {
            self.found.push((f.clone(), name));
        }
    }
}

impl<'a> Visit<'a> for Finder {
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.function(f.sig.ident.to_string(), &f.attrs, &f.block);
    }

    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.function(f.sig.ident.to_string(), &f.attrs, &f.block);
    }

    fn visit_expr_closure(&mut self, c: &'a syn::ExprClosure) {
        self.closures += 1;
        syn::visit::visit_expr_closure(self, c);
        self.closures -= 1;
    }

    fn visit_path_segment(&mut self, s: &'a syn::PathSegment) {
        self.name_seen(&s.ident);
        syn::visit::visit_path_segment(self, s);
    }

    fn visit_expr_method_call(&mut self, m: &'a syn::ExprMethodCall) {
        self.name_seen(&m.method);
        syn::visit::visit_expr_method_call(self, m);
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn scan(src: &str) -> Finder {
    let file = syn::parse_file(src).expect("parse a kernel source");
    let mut f = Finder::default();
    f.visit_file(&file);
    f
}

#[test]
fn no_closure_outside_a_target_feature_function_calls_an_intrinsic() {
    let mut files = Vec::new();
    sources(&repo_root().join("runtime/src/kernels"), &mut files);
    let (mut functions, mut with_features, mut found) = (0, 0, Vec::new());
    for path in &files {
        let f = scan(&std::fs::read_to_string(path).unwrap());
        functions += f.functions;
        with_features += f.with_features;
        let name = path
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        found.extend(
            f.found
                .into_iter()
                .map(|(g, i)| format!("{name}: {g}: {i}")),
        );
    }
    // The kernels are there to be checked (a path or parse gone wrong
    // would otherwise pass).
    assert!(
        files.len() >= 8 && functions >= 100 && with_features >= 20,
        "read {} files, {functions} functions, {with_features} with target features",
        files.len()
    );
    found.sort();
    found.dedup();
    assert!(
        found.is_empty(),
        "closures that call intrinsics outside a #[target_feature] function (compiled \
         without its features, each intrinsic may become a call; write a loop or an \
         #[inline(always)] fn):\n{}",
        found.join("\n")
    );
}

/// The check itself: the 16-row fold as it was before 9577773 is caught;
/// the same closure inside a `#[target_feature]` function, and a helper
/// with a loop, are not.
#[test]
fn the_check_finds_the_fold_that_cost_the_text_step_41_percent() {
    let before = r#"
        #[inline(always)]
        unsafe fn hsum16(a: &[__m512; 16]) -> __m512 {
            unsafe {
                let t: [__m512; 8] = core::array::from_fn(|j| {
                    let (x, y) = (a[2 * j], a[2 * j + 1]);
                    _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y))
                });
                t[0]
            }
        }
        #[target_feature(enable = "avx512f")]
        unsafe fn kernel(a: &[__m512; 16]) -> __m512 {
            let t: [__m512; 8] = core::array::from_fn(|j| _mm512_add_ps(a[j], a[j + 8]));
            #[inline(always)]
            fn inner(a: &[__m512; 16]) -> __m512 {
                let f = |x| unsafe { _mm512_abs_ps(x) };
                f(a[0])
            }
            inner(&t)
        }
        #[inline(always)]
        unsafe fn looped(a: &[__m512; 16]) -> __m512 {
            let mut t = [a[0]; 8];
            for (j, tj) in t.iter_mut().enumerate() {
                *tj = unsafe { _mm512_add_ps(a[2 * j], a[2 * j + 1]) };
            }
            t[0]
        }
    "#;
    let f = scan(before);
    assert_eq!(f.functions, 4);
    assert_eq!(f.with_features, 1);
    let names: Vec<String> = f.found.iter().map(|(g, i)| format!("{g}: {i}")).collect();
    assert_eq!(
        names,
        [
            "hsum16: _mm512_add_ps",
            "hsum16: _mm512_unpacklo_ps",
            "hsum16: _mm512_unpackhi_ps",
            "inner: _mm512_abs_ps"
        ]
    );
}
