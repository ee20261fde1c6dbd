//! Which SIMD code the local model runs on this CPU, decided in one place: every kernel of the
//! forward pass asks [`CpuPath`] instead of testing CPU features itself.
//!
//! Each architecture has a ladder of paths, each a superset of the one below it. x86-64:
//!
//! | path | needs | int8 products | element-wise code |
//! |---|---|---|---|
//! | `avx512` | AVX-512 F, BW, DQ, VL and VNNI (+ AVX2, FMA) | 512-bit `vpdpbusd` | 16 wide, fused |
//! | `avx-vnni` | AVX2, FMA and AVX-VNNI | 256-bit `vpdpbusd` | 8 wide, fused |
//! | `avx2` | AVX2 and FMA | 256-bit `vpmaddwd` on 16-bit operands | 8 wide, fused |
//! | `portable` | nothing | a scalar loop, several times slower than f32 | the target's baseline |
//!
//! aarch64 (arm64: Graviton, Ampere, Apple silicon under Linux):
//!
//! | path | needs | int8 products | element-wise code |
//! |---|---|---|---|
//! | `neon-dot` | NEON and the dot-product extension (Armv8.2 `dotprod`: Graviton 2 and later, Neoverse, Apple M1 and later) | `sdot`, 16 multiply-adds per instruction | 4 wide, fused |
//! | `neon` | NEON (every arm64 CPU: Graviton 1, Cortex-A72) | `smlal` on 16-bit operands, 4 per instruction | 4 wide, fused |
//! | `portable` | nothing | a scalar loop | 4 wide, fused (NEON and FMA are arm64's baseline) |
//!
//! On the `avx512` path attention also runs in bf16 when the CPU has AVX-512 BF16. A CPU with
//! AVX-512 but without VNNI (Skylake-X) gets the `avx2` path.
//!
//! `KASS_CPU_PATH=portable|neon|neon-dot|avx2|avx-vnni|avx512` asks for a lower path than the
//! CPU's best, so every path can be run and tested on one machine. It only lowers: a path this
//! CPU lacks (another architecture's included) falls back to the best one below it that the CPU
//! has, with a warning.
//!
//! Every path gives the same int8 products to the bit (they are integer sums, converted and
//! scaled by the same operations); f32 results differ between paths in the last bits only
//! (fused multiply-adds, and the f32 products' own kernels).

use std::fmt;
use std::sync::OnceLock;

/// The variable that lowers the path; see the module's documentation.
pub const CPU_PATH_VARIABLE: &str = "KASS_CPU_PATH";

/// A rung of a ladder, lowest first (the order is the derived `Ord`). The arm64 rungs sit
/// below the x86-64 ones: a CPU has the rungs of one architecture only, so the order between
/// the two ladders only decides where a request for the other architecture's path lands (this
/// CPU's best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuPath {
    /// Plain Rust for the target's baseline: runs anywhere.
    Portable,
    /// aarch64 NEON (the architecture's baseline).
    Neon,
    /// aarch64 NEON with the dot-product instructions (`sdot`).
    NeonDot,
    /// x86-64 AVX2 and FMA.
    Avx2,
    /// x86-64 AVX2, FMA and AVX-VNNI (the 256-bit VEX encoding: Alder Lake and later).
    AvxVnni,
    /// x86-64 AVX-512 F, BW, DQ, VL and VNNI.
    Avx512,
}

impl CpuPath {
    /// Every path of every architecture, lowest first.
    pub const ALL: [CpuPath; 6] = [
        CpuPath::Portable,
        CpuPath::Neon,
        CpuPath::NeonDot,
        CpuPath::Avx2,
        CpuPath::AvxVnni,
        CpuPath::Avx512,
    ];

    /// The ladder of the architecture kass was built for, lowest first: the paths a CPU of it
    /// may have. Tests walk it, announcing a rung this CPU lacks.
    pub fn ladder() -> &'static [CpuPath] {
        #[cfg(target_arch = "x86_64")]
        return &[
            CpuPath::Portable,
            CpuPath::Avx2,
            CpuPath::AvxVnni,
            CpuPath::Avx512,
        ];
        #[cfg(target_arch = "aarch64")]
        return &[CpuPath::Portable, CpuPath::Neon, CpuPath::NeonDot];
        #[allow(unreachable_code)]
        &[CpuPath::Portable]
    }

    /// The name `KASS_CPU_PATH` takes.
    pub fn name(self) -> &'static str {
        match self {
            CpuPath::Portable => "portable",
            CpuPath::Neon => "neon",
            CpuPath::NeonDot => "neon-dot",
            CpuPath::Avx2 => "avx2",
            CpuPath::AvxVnni => "avx-vnni",
            CpuPath::Avx512 => "avx512",
        }
    }

    /// What a CPU must have for this path, as a person would say it.
    pub fn needs(self) -> &'static str {
        match self {
            CpuPath::Portable => "nothing",
            CpuPath::Neon => "aarch64 NEON",
            CpuPath::NeonDot => "aarch64 NEON and the dot-product extension (dotprod)",
            CpuPath::Avx2 => "x86-64 AVX2 and FMA",
            CpuPath::AvxVnni => "x86-64 AVX2, FMA and AVX-VNNI",
            CpuPath::Avx512 => "x86-64 AVX-512 F, BW, DQ, VL and VNNI",
        }
    }

    /// Reads a `KASS_CPU_PATH` value (`avxvnni` and `avx-vnni`, `neondot` and `neon-dot`
    /// alike; case ignored).
    pub fn parse(value: &str) -> Option<CpuPath> {
        let value = value.trim().to_ascii_lowercase();
        CpuPath::ALL
            .into_iter()
            .find(|p| p.name() == value || p.name().replace('-', "") == value)
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        match self {
            CpuPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            CpuPath::AvxVnni => {
                CpuPath::Avx2.supported() && std::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx512 => {
                CpuPath::Avx2.supported()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512dq")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            CpuPath::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            CpuPath::NeonDot => {
                CpuPath::Neon.supported() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best path this CPU has.
    pub fn best() -> CpuPath {
        static BEST: OnceLock<CpuPath> = OnceLock::new();
        *BEST.get_or_init(|| CpuPath::best_up_to(CpuPath::Avx512))
    }

    /// The highest path at or below `wanted` that this CPU has.
    pub fn best_up_to(wanted: CpuPath) -> CpuPath {
        CpuPath::ALL
            .into_iter()
            .rev()
            .find(|p| *p <= wanted && p.supported())
            .unwrap_or(CpuPath::Portable)
    }

    /// The path the local model runs: [`CpuPath::best`], lowered by `KASS_CPU_PATH`; read once
    /// per process, and a value that cannot be honoured is logged once.
    pub fn selected() -> CpuPath {
        static SELECTED: OnceLock<CpuPath> = OnceLock::new();
        *SELECTED.get_or_init(|| {
            let value = std::env::var(CPU_PATH_VARIABLE).ok();
            CpuPath::from_request(value.as_deref())
        })
    }

    /// The path to run when `KASS_CPU_PATH` is `request`; warns when it cannot be honoured.
    pub fn from_request(request: Option<&str>) -> CpuPath {
        let Some(value) = request.filter(|v| !v.trim().is_empty()) else {
            return CpuPath::best();
        };
        let Some(wanted) = CpuPath::parse(value) else {
            tracing::warn!(
                "{CPU_PATH_VARIABLE}={value:?} is not one of portable, neon, neon-dot, avx2, \
                 avx-vnni, avx512; \
                 the local model runs this CPU's best path, {}",
                CpuPath::best()
            );
            return CpuPath::best();
        };
        CpuPath::lowered_to(wanted)
    }

    /// `wanted` if this CPU has it, else the best path below it that it has, with a warning.
    pub fn lowered_to(wanted: CpuPath) -> CpuPath {
        let path = CpuPath::best_up_to(wanted);
        if path != wanted {
            tracing::warn!(
                "the local model was asked for the {wanted} CPU path, which needs {}; this CPU \
                 lacks it, so it runs the {path} path",
                wanted.needs()
            );
        }
        path
    }

    /// Whether this path has an int8 kernel faster than the f32 products (measured: see
    /// docs/local-model.md). The portable loop is several times slower than f32.
    pub fn int8_is_fast(self) -> bool {
        // The avx2 int8 kernel measured level with f32 (0.9x, on a loaded AVX-512 machine
        // forced to the avx2 path): until it is measured faster on an AVX2-only CPU, `auto`
        // keeps f32 there, never a precision slower than f32. `neon`'s `smlal` does 4
        // multiply-adds per instruction, as f32's `fmla` does: no faster. `neon-dot`'s `sdot`
        // does 16 (as `vpdpbusd` on 128 bits, where avx-vnni measured faster than f32).
        matches!(self, CpuPath::AvxVnni | CpuPath::Avx512 | CpuPath::NeonDot)
    }

    /// Whether attention runs in bf16 (`vdpbf16ps`) for the int8 precision, heads `d` wide.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn bf16_attention(self, d: usize) -> bool {
        self == CpuPath::Avx512 && d.is_multiple_of(32) && avx512_bf16()
    }
}

/// AVX-512 BF16 on top of the `avx512` path.
#[cfg(target_arch = "x86_64")]
pub(super) fn avx512_bf16() -> bool {
    CpuPath::Avx512.supported() && std::is_x86_feature_detected!("avx512bf16")
}

impl fmt::Display for CpuPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_values_are_refused() {
        for path in CpuPath::ALL {
            assert_eq!(CpuPath::parse(path.name()), Some(path));
        }
        assert_eq!(CpuPath::parse(" AVXVNNI "), Some(CpuPath::AvxVnni));
        assert_eq!(CpuPath::parse("neondot"), Some(CpuPath::NeonDot));
        assert_eq!(CpuPath::parse("sse4"), None);
    }

    #[test]
    fn a_request_only_lowers_the_path_and_lands_on_one_the_cpu_has() {
        let best = CpuPath::best();
        assert!(best.supported());
        assert_eq!(CpuPath::from_request(None), best);
        assert_eq!(CpuPath::from_request(Some("")), best);
        assert_eq!(CpuPath::from_request(Some("nonsense")), best);
        assert_eq!(CpuPath::from_request(Some("portable")), CpuPath::Portable);
        for wanted in CpuPath::ALL {
            let got = CpuPath::from_request(Some(wanted.name()));
            assert!(got <= wanted && got <= best, "{wanted} gave {got}");
            assert!(got.supported(), "{got} chosen but not supported");
            if wanted.supported() {
                assert_eq!(got, wanted);
            }
        }
    }

    /// The ladder: each path needs everything the one below it needs, and the CPU's best is
    /// on the ladder of the architecture kass was built for.
    #[test]
    fn a_supported_path_implies_the_paths_it_builds_on() {
        if CpuPath::AvxVnni.supported() || CpuPath::Avx512.supported() {
            assert!(CpuPath::Avx2.supported());
        }
        if CpuPath::NeonDot.supported() {
            assert!(CpuPath::Neon.supported());
        }
        assert!(CpuPath::Portable.supported());
        assert!(CpuPath::ladder().contains(&CpuPath::best()));
        for path in CpuPath::ALL {
            if path.supported() {
                assert!(CpuPath::ladder().contains(&path), "{path} off this ladder");
            }
        }
        #[cfg(target_arch = "aarch64")]
        assert!(CpuPath::Neon.supported(), "NEON is arm64's baseline");
        #[cfg(target_arch = "x86_64")]
        {
            if avx512_bf16() {
                assert!(CpuPath::Avx512.bf16_attention(32));
                assert!(!CpuPath::Avx512.bf16_attention(48));
            }
            assert!(!CpuPath::Avx2.bf16_attention(32));
        }
    }
}
