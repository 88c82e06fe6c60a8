//! The machinery behind the one knob table ([`crate::knobs`]): the
//! [`dimensions!`] macro that turns each table line into a scenario field
//! (type, default, documentation), a `RunParams` field, a matrix
//! dimension and an analyzer `Dimension`; [`Numeric`], the number a value
//! stands for on a chart axis; and [`times`], one dimension's product.

use crate::fault::Fault;
use crate::settings::{
    AutoConverge, Backend, Channels, CompletionAction, Compression, DirtyLimit, DiskFormat,
    DiskPattern, Postcopy, Services, StorageMode, Transport, Xbzrle,
};
use crate::units::{BitRate, ByteRate, Count, Dur, Percent, Size};

/// The number a value stands for on an axis, in the type's natural unit.
pub trait Numeric {
    /// Size: MiB; byte rate: MB/s; bit rate: Mbit/s; duration: ms;
    /// percent: %; choices: their position in the list of choices.
    /// (A bandwidth cap and announce timing have no number of their own:
    /// their table lines give one with `value`.)
    fn number(&self) -> f64;
}

macro_rules! numeric {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl Numeric for $t {
            fn number(&self) -> f64 {
                let $v = self;
                $e
            }
        })*
    };
}

numeric! {
    Size => |v| v.0 as f64 / 1048576.0;
    ByteRate => |v| v.0 as f64 / 1e6;
    BitRate => |v| v.mbps();
    Dur => |v| v.ms();
    Percent => |v| v.0;
    Count => |v| v.0 as f64;
    u32 => |v| *v as f64;
    Backend => |v| *v as u8 as f64;
    Transport => |v| *v as u8 as f64;
    Services => |v| v.bits() as f64;
    Fault => |v| v.kind as u8 as f64;
    StorageMode => |v| *v as u8 as f64;
    DiskFormat => |v| *v as u8 as f64;
    DiskPattern => |v| *v as u8 as f64;
    Compression => |v| *v as u8 as f64;
    CompletionAction => |v| *v as u8 as f64;
    Channels => |v| match v { Channels::Off => 0.0, Channels::On(n) => *n as f64 };
    Xbzrle => |v| match v { Xbzrle::Off => 0.0, Xbzrle::Cache(s) => s.number() };
    AutoConverge => |v| match v { AutoConverge::Off => 0.0, AutoConverge::On { initial, .. } => *initial as f64 };
    Postcopy => |v| match v {
        Postcopy::Off => 0.0,
        Postcopy::Allowed => 1.0,
        Postcopy::AfterPasses(n) => 1.0 + *n as f64,
        Postcopy::AfterTime(d) => 1000.0 + d.ms(),
    };
    DirtyLimit => |v| match v { DirtyLimit::Off => 0.0, DirtyLimit::Rate(r) => r.number() };
}

/// Generates, from the knob table, per section: the scenario struct of
/// lists (`GuestSpec`, with serde defaults and `deny_unknown_fields`) and a
/// one-run struct (`GuestSettings`, with `RunParams::guest()`) and
/// `GuestSpec::expand` (its part of the matrix); the flat `RunParams`; and
/// `Dimension` with `DIMENSIONS`.
///
/// A section: `[section] Spec => Settings, Key { lines }`. A table line:
/// `/// doc` `key => run_field: Type = default, required|optional,
/// "axis title" [* scale] [, value |p| expr];`. Scalar settings that are
/// not dimensions follow the lines as `@ key: Type = default;`.
macro_rules! dimensions {
    ($(
        $(#[$sm:meta])*
        [$section:ident] $Spec:ident => $One:ident, $Key:ident {
            $(
                $(#[$m:meta])*
                $key:ident => $field:ident : $T:ty = $default:expr, $req:ident,
                $axis:literal $(* $scale:literal)? $(, value $vf:expr)? ;
            )*
            $( @ $(#[$fm:meta])* $fkey:ident : $FT:ty = $fdefault:expr ; )*
        }
    )*) => {
        $(
            $(#[$sm])*
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
            #[serde(default, deny_unknown_fields)]
            pub struct $Spec {
                $( $(#[$m])* pub $key: $crate::scalar::Many<$T>, )*
                $( $(#[$fm])* pub $fkey: $FT, )*
            }

            impl Default for $Spec {
                fn default() -> Self {
                    $Spec {
                        $( $key: dimensions!(@default $req, $default), )*
                        $( $fkey: $fdefault, )*
                    }
                }
            }

            impl $Spec {
                /// Multiply `runs` by this section's values, in table order.
                pub fn expand(&self, mut runs: Vec<RunParams>) -> Vec<RunParams> {
                    $( runs = $crate::dimension::times(runs, &self.$key.0, |r, v| r.$field = v); )*
                    runs
                }

                /// Each key's number of values, with its dotted name
                /// (`guest.ram`): this section's factors of the matrix size.
                pub fn sizes(&self) -> Vec<(&'static str, usize)> {
                    vec![$( (concat!(stringify!($section), ".", stringify!($key)), self.$key.0.len()), )*]
                }

                /// The first required key that was not written.
                pub fn missing(&self) -> Option<&'static str> {
                    $( if self.$key.0.is_empty() { return Some(stringify!($key)); } )*
                    None
                }
            }

            #[doc = concat!("The keys of `[", stringify!($section), "]`: a backend's exhaustive")]
            /// `match` on them makes a new key a compile error until the
            /// backend says what it does with it.
            #[allow(non_camel_case_types)]
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $Key {
                $( $(#[$m])* $key, )*
            }

            impl $Key {
                /// Every key, in table order.
                pub const ALL: &'static [$Key] = &[$($Key::$key),*];

                /// Its dotted name (`migration.downtime_limit`).
                pub fn name(self) -> &'static str {
                    match self {
                        $( $Key::$key => concat!(stringify!($section), ".", stringify!($key)), )*
                    }
                }
            }

            #[doc = concat!("One run's values of `[", stringify!($section), "]`.")]
            #[derive(Debug, Clone, PartialEq)]
            pub struct $One {
                $( $(#[$m])* pub $field: $T, )*
            }

            impl $One {
                /// One key's value as a scenario writes it.
                pub fn value_of(&self, key: $Key) -> String {
                    match key {
                        $( $Key::$key => self.$field.to_string(), )*
                    }
                }

                /// Whether `key` has its default value.
                pub fn is_default(&self, key: $Key) -> bool {
                    match key {
                        $( $Key::$key => self.$field == $default, )*
                    }
                }
            }
        )*

        /// The parameters of one run: one value per scenario dimension.
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct RunParams {
            /// Position in the matrix, 0-based; also orders `runs.jsonl`.
            pub index: usize,
            /// Repetition number of this combination, 0-based.
            pub repetition: u32,
            /// The scenario variant this run belongs to ("" without variants).
            pub variant: String,
            /// The host pair (`[[hosts.pair]]` name) it ran on ("" with one
            /// pair or in the lab): set by the matrix, not a knob.
            pub pair: String,
            $( $( $(#[$m])* pub $field: $T, )* )*
        }

        impl Default for RunParams {
            fn default() -> Self {
                RunParams {
                    index: 0,
                    repetition: 0,
                    variant: String::new(),
                    pair: String::new(),
                    $( $( $field: $default, )* )*
                }
            }
        }

        impl RunParams {
            $(
                #[doc = concat!("This run's `[", stringify!($section), "]` values.")]
                pub fn $section(&self) -> $One {
                    $One { $( $field: self.$field, )* }
                }
            )*
        }

        /// One scenario dimension as the analyzer sees it.
        pub struct Dimension {
            /// Field name in [`RunParams`] (and in manifests' `varying`).
            pub name: &'static str,
            /// Where it is written in a scenario file (`link.rate`).
            pub key: &'static str,
            /// Axis title with unit.
            pub axis: &'static str,
            /// Human label of a run's value (`"100mbit"`).
            pub label: fn(&RunParams) -> String,
            /// Numeric value for axes and sorting.
            pub value: fn(&RunParams) -> f64,
        }

        /// Every key of the table, in its order: what the scenario
        /// reference ([`crate::reference`]) is generated from.
        pub const KEYS: &[$crate::reference::KeyDoc] = &[
            $(
                $(
                    $crate::reference::KeyDoc {
                        section: stringify!($section),
                        key: stringify!($key),
                        type_name: stringify!($T),
                        expecting: <$T as $crate::scalar::ScalarField>::EXPECTING,
                        default: || serde_json::to_value::<$T>($default).unwrap_or_default(),
                        required: dimensions!(@required $req),
                        dimension: true,
                        doc: &[$(stringify!($m)),*],
                    },
                )*
                $(
                    $crate::reference::KeyDoc {
                        section: stringify!($section),
                        key: stringify!($fkey),
                        type_name: stringify!($FT),
                        expecting: "",
                        default: || serde_json::to_value::<$FT>($fdefault).unwrap_or_default(),
                        required: false,
                        dimension: false,
                        doc: &[$(stringify!($fm)),*],
                    },
                )*
            )*
        ];

        /// Every section of the table with its doc attributes, in order.
        pub const SECTIONS: &[(&str, &[&str])] = &[
            $( (stringify!($section), &[$(stringify!($sm)),*]), )*
        ];

        /// Every dimension: the variant and the host pair, then the knob
        /// table's in the matrix's order.
        pub const DIMENSIONS: &[Dimension] = &[
            Dimension {
                name: "variant",
                key: "variant.name",
                axis: "variant",
                label: |p| p.variant.clone(),
                // Variants have no order of their own: keep the matrix's.
                value: |p| p.index as f64,
            },
            Dimension {
                name: "pair",
                key: "hosts.pair",
                axis: "host pair",
                label: |p| p.pair.clone(),
                // Pairs are the matrix's outermost dimension: its order.
                value: |p| p.index as f64,
            },
            $($(
                Dimension {
                    name: stringify!($field),
                    key: concat!(stringify!($section), ".", stringify!($key)),
                    axis: $axis,
                    label: |p| p.$field.to_string(),
                    value: dimensions!(@value $field [$($scale)?] [$($vf)?]),
                },
            )*)*
        ];
    };
    (@required required) => { true };
    (@required optional) => { false };
    (@default required, $d:expr) => { $crate::scalar::Many(Vec::new()) };
    (@default optional, $d:expr) => { $crate::scalar::Many::one($d) };
    (@value $field:ident [] [$vf:expr]) => { $vf };
    (@value $field:ident [$($scale:literal)?] []) => {
        |p| $crate::dimension::Numeric::number(&p.$field) $(* $scale)?
    };
}
pub(crate) use dimensions;

/// Multiply the runs so far by one dimension's values.
pub fn times<R: Clone, T: Copy>(runs: Vec<R>, values: &[T], set: impl Fn(&mut R, T)) -> Vec<R> {
    // Callers bound the product first ([`crate::matrix::size`]).
    let n = runs.len().checked_mul(values.len());
    let mut out = Vec::with_capacity(n.expect("a matrix size that overflows: check it first"));
    for r in runs {
        for v in values {
            let mut r = r.clone();
            set(&mut r, *v);
            out.push(r);
        }
    }
    out
}
