//! What a prepared kernel is built for: the ISA level that runs it and the caches of the
//! core it runs on (docs/KERNELS.md "Plans from the machine"). The kernels never read the
//! machine themselves; the caller detects (or overrides) the caches and passes them in.

use std::fmt;

use crate::isa::Isa;

/// Per-core data cache sizes in bytes, as the plans see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheSizes {
    /// L1 data cache of one core.
    pub l1d: usize,
    /// L2 (unified) of one core.
    pub l2: usize,
    /// The last-level cache the core shares (0 when unknown).
    pub l3: usize,
}

impl CacheSizes {
    /// The caches assumed when none are known: a 2020s x86 core (Zen 3 / Ice Lake class:
    /// 32 KB L1d, 512 KB L2, 32 MB L3) — small enough that plans sized for it do not spill
    /// on larger caches.
    pub const FALLBACK: CacheSizes = CacheSizes {
        l1d: 32 << 10,
        l2: 512 << 10,
        l3: 32 << 20,
    };

    /// Sizes a plan can use: L1d at least 16 KB and L2 at least 128 KB (smaller or zero
    /// readings are treated as those), L2 at least L1d.
    pub fn sane(self) -> CacheSizes {
        let l1d = self.l1d.max(16 << 10);
        CacheSizes {
            l1d,
            l2: self.l2.max(128 << 10).max(l1d),
            l3: self.l3,
        }
    }

    /// Parses "l1d=48K,l2=2M,l3=32M" (any subset; sizes in bytes or with K/M/G suffixes,
    /// case-insensitive), starting from `base`.
    pub fn parse_over(base: CacheSizes, spec: &str) -> Result<CacheSizes, String> {
        let mut out = base;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': expected LEVEL=SIZE (e.g. l2=512K)"))?;
            let bytes = parse_size(value).ok_or_else(|| {
                format!("'{part}': size '{value}' is not a number of bytes with an optional K, M or G suffix")
            })?;
            match key.trim().to_ascii_lowercase().as_str() {
                "l1d" | "l1" => out.l1d = bytes,
                "l2" => out.l2 = bytes,
                "l3" | "llc" => out.l3 = bytes,
                other => return Err(format!("'{part}': unknown cache '{other}' (l1d, l2, l3)")),
            }
        }
        if out.l1d == 0 || out.l2 == 0 {
            return Err(format!("{spec}: L1d and L2 must be non-zero"));
        }
        Ok(out)
    }
}

/// "512K", "2M", "1048576": bytes, at most 1 TB.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    let n: usize = digits.trim().parse().ok()?;
    let bytes = n.checked_mul(1usize << shift)?;
    (bytes <= 1 << 40).then_some(bytes)
}

impl fmt::Display for CacheSizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kb = |b: usize| {
            if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
                format!("{}M", b >> 20)
            } else {
                format!("{}K", b >> 10)
            }
        };
        write!(
            f,
            "l1d={},l2={},l3={}",
            kb(self.l1d),
            kb(self.l2),
            kb(self.l3)
        )
    }
}

/// The level and caches a kernel is prepared for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub isa: Isa,
    pub caches: CacheSizes,
}

impl Target {
    pub fn new(isa: Isa, caches: CacheSizes) -> Target {
        Target {
            isa,
            caches: caches.sane(),
        }
    }

    /// `isa` with [`CacheSizes::FALLBACK`] (tests, benches).
    pub fn for_isa(isa: Isa) -> Target {
        Target::new(isa, CacheSizes::FALLBACK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_specs_parse() {
        let c = CacheSizes::parse_over(CacheSizes::FALLBACK, "l2=2M, L1D=48k").unwrap();
        assert_eq!((c.l1d, c.l2, c.l3), (48 << 10, 2 << 20, 32 << 20));
        assert_eq!(CacheSizes::parse_over(c, "l3=1048576").unwrap().l3, 1 << 20);
        for bad in [
            "l2",
            "l2=",
            "l2=5X",
            "l4=1M",
            "l2=0",
            "l2=-1",
            "l2=99999999999G",
        ] {
            assert!(CacheSizes::parse_over(c, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        let c = CacheSizes {
            l1d: 48 << 10,
            l2: 2 << 20,
            l3: 300 << 20,
        };
        assert_eq!(c.to_string(), "l1d=48K,l2=2M,l3=300M");
        assert_eq!(
            CacheSizes::parse_over(CacheSizes::FALLBACK, &c.to_string()),
            Ok(c)
        );
    }

    #[test]
    fn tiny_readings_are_raised_to_usable_sizes() {
        let c = CacheSizes {
            l1d: 0,
            l2: 1024,
            l3: 0,
        }
        .sane();
        assert_eq!((c.l1d, c.l2), (16 << 10, 128 << 10));
    }
}
