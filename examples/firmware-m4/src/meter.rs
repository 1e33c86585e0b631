//! What a run costs: instructions, counted with SysTick, and the stack's
//! high-water mark, found by painting.
//!
//! Under `qemu-system-arm -icount shift=0` the virtual clock advances one
//! nanosecond per instruction, and mps2-an386's SysTick runs from its 25
//! MHz system clock, so a tick is about 40 instructions. [`calibrate`]
//! measures the ratio on a loop of known length, so the counts hold
//! whatever the clock; without `-icount` they are wall time, not
//! instructions. On a real board the same code counts cycles.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;

/// SysTick counts down from this and wraps: 24 bits.
const RELOAD: u32 = 0x00ff_ffff;

/// Wraps of the SysTick counter so far.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick from the core clock, wrapping with an interrupt.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // The counter reads 0 until its first tick loads the reload value,
    // which `ticks` would take for a whole period gone by.
    while SYST::get_current() == 0 {}
}

/// Ticks since [`start`].
pub fn ticks() -> u64 {
    loop {
        let w = WRAPS.load(Ordering::Relaxed);
        let c = SYST::get_current();
        // A wrap between the two reads would pair an old count with a new
        // value: read again.
        if WRAPS.load(Ordering::Relaxed) == w {
            return w as u64 * (RELOAD as u64 + 1) + (RELOAD - c) as u64;
        }
    }
}

/// Instructions in [`calibrate`]'s loop: 2 per iteration.
pub const CALIBRATION_INSNS: u32 = 2_000_000;

/// [`calibrate`]'s measure, for [`per`].
static CALIBRATION: AtomicU32 = AtomicU32::new(0);

/// Instructions per item, from `ticks` over `items` items, by the
/// calibration (0 before it).
pub fn per(ticks: u64, items: usize) -> u64 {
    let cal = CALIBRATION.load(Ordering::Relaxed) as u64;
    if cal == 0 || items == 0 {
        return 0;
    }
    ticks * CALIBRATION_INSNS as u64 / cal / items as u64
}

/// Ticks a loop of [`CALIBRATION_INSNS`] instructions takes (kept for
/// [`per`]).
pub fn calibrate() -> u64 {
    let t0 = ticks();
    // SAFETY: a register-only countdown loop.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_INSNS / 2 => _,
            options(nomem, nostack)
        );
    }
    let t = ticks() - t0;
    CALIBRATION.store(t.min(u32::MAX as u64) as u32, Ordering::Relaxed);
    t
}

/// What the stack is painted with.
const PAINT: u32 = 0x5afe_57ac;

unsafe extern "C" {
    /// The lowest address the stack may reach (cortex-m-rt: the end of
    /// the statics).
    static _stack_end: u32;
    /// The stack's top (cortex-m-rt: the end of RAM).
    static _stack_start: u32;
}

/// Paints the free stack below the caller's frame, leaving 256 bytes for
/// this function's own.
#[inline(never)]
pub fn paint_stack() {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut a = bottom;
    while a + 4 <= sp.saturating_sub(256) {
        // SAFETY: between the statics and the live frames, 4-aligned
        // (cortex-m-rt aligns `_stack_end`), unused until now.
        unsafe { core::ptr::write_volatile(a as *mut u32, PAINT) };
        a += 4;
    }
}

/// Bytes of stack ever used since [`paint_stack`]: from the top down to
/// the lowest word no longer painted.
pub fn stack_high_water() -> usize {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut a = bottom;
    // SAFETY: reads of the painted region, 4-aligned.
    while a < top && unsafe { core::ptr::read_volatile(a as *const u32) } == PAINT {
        a += 4;
    }
    top - a
}

/// Bytes of RAM between the statics and the stack's top: what the
/// stack could use.
pub fn stack_room() -> usize {
    core::ptr::addr_of!(_stack_start) as usize - core::ptr::addr_of!(_stack_end) as usize
}
