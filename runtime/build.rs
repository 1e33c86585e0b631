//! Sets `cfg(edgegen_dsp)` on ARMv7E-M targets (Cortex-M4 and M7), whose
//! DSP extension (`SXTB16`, `SMLAD`) the int8 kernels use. Stable Rust has
//! no `target_feature = "dsp"` cfg on Arm, and every `thumbv7em-*` target
//! has the extension by definition of the architecture.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgegen_dsp)");
    println!("cargo::rerun-if-env-changed=TARGET");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=edgegen_dsp");
    }
}
