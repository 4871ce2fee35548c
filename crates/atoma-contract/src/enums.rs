//! The protocol's enumerations (SPEC §3). Their numbers are part of the wire format: calls carry
//! the raw number and the contract turns it into one of these types or refuses the call.
//!
//! Each value also has one stable kebab-case name (`chat-completions`, `intel-cpu`,
//! `flash-attention`) and perhaps a few aliases, so that every client prints and reads the same
//! words; the tables live here, beside the numbers, and nowhere else. Names are matched exactly:
//! folding case or accepting `_` for `-` is a client's choice.

use serde::{Deserialize, Serialize};

/// What every enumeration of SPEC §3 offers, for code that is generic over them (a client's
/// argument parsers, a menu of choices).
pub trait WireEnum: Copy + Sized + 'static {
    /// The integer a value travels as.
    type Wire: Copy;
    /// Every value, in wire-number order.
    const ALL: &'static [Self];

    /// The wire number of this value.
    fn to_wire(self) -> Self::Wire;

    /// The value with this wire number, if there is one.
    fn from_wire(value: Self::Wire) -> Option<Self>;

    /// The value's stable name, as clients print it.
    fn name(self) -> &'static str;

    /// Other names clients accept for the value; never printed.
    fn aliases(self) -> &'static [&'static str];

    /// The value whose name or one of whose aliases is exactly `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name || v.aliases().contains(&name))
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident : $repr:ty {
        $($(#[$vdoc:meta])* $variant:ident = $value:literal => $label:literal $(| $alias:literal)*,)+
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[allow(missing_docs)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in wire-number order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire number of this value.
            pub const fn to_wire(self) -> $repr {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The value with this wire number, if there is one.
            pub const fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The value's stable name, as clients print it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// Other names clients accept for the value; never printed.
            pub const fn aliases(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$($alias),*],)+
                }
            }

            /// The value whose name or one of whose aliases is exactly `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                <Self as WireEnum>::from_name(name)
            }
        }

        impl WireEnum for $name {
            type Wire = $repr;
            const ALL: &'static [Self] = $name::ALL;

            fn to_wire(self) -> $repr {
                $name::to_wire(self)
            }

            fn from_wire(value: $repr) -> Option<Self> {
                $name::from_wire(value)
            }

            fn name(self) -> &'static str {
                $name::name(self)
            }

            fn aliases(self) -> &'static [&'static str] {
                $name::aliases(self)
            }
        }
    };
}

wire_enum!(
    /// What a task computes.
    TaskRole: u16 {
        ChatCompletions = 0 => "chat-completions",
        Embeddings = 1 => "embeddings",
        Vision = 2 => "vision",
        ImageGeneration = 3 => "image-generation",
        TextToSpeech = 4 => "text-to-speech",
        SpeechToText = 5 => "speech-to-text",
        FineTuning = 6 => "fine-tuning",
        Training = 7 => "training",
    }
);

wire_enum!(
    /// How the result of a stack is verified (SPEC §6).
    SecurityLevel: u16 {
        /// The node is trusted; the owner may contest the claimed units.
        NoSecurity = 0 => "none" | "no-security",
        /// The node runs in a TEE and signs its settlement with an attested enclave key.
        ConfidentialCompute = 1 => "tee" | "confidential-compute" | "confidential",
        /// Randomly sampled attesters re-execute the stack and must agree.
        SamplingConsensus = 2 => "sampling" | "sampling-consensus",
    }
);

wire_enum!(
    /// A model's input and output kinds.
    Modality: u16 {
        TextToText = 0 => "text-to-text",
        TextToImage = 1 => "text-to-image",
        TextToEmbedding = 2 => "text-to-embedding",
        ImageToText = 3 => "image-to-text",
        TextToSpeech = 4 => "text-to-speech",
        SpeechToText = 5 => "speech-to-text",
    }
);

wire_enum!(
    /// The hardware that holds a confidential-compute enclave key.
    DeviceType: u16 {
        IntelCpu = 0 => "intel-cpu",
        AmdCpu = 100 => "amd-cpu",
        ArmCpu = 200 => "arm-cpu",
        NvidiaGpu = 300 => "nvidia-gpu",
        NvidiaNvSwitch = 10000 => "nvidia-nvswitch",
    }
);

wire_enum!(
    /// One inference optimization (SPEC §3). It travels as a bit of an [`Optimizations`] set; its
    /// wire number is the position of that bit.
    Optimization: u8 {
        FlashAttention = 0 => "flash-attention",
        PromptCaching = 1 => "prompt-caching",
        Quantization = 2 => "quantization",
        Pruning = 3 => "pruning",
        SpeculativeDecoding = 4 => "speculative-decoding",
    }
);

impl Optimization {
    /// This optimization's bit in an [`Optimizations`] set.
    pub const fn bit(self) -> u8 {
        1 << self.to_wire()
    }
}

/// A set of inference optimizations as a bit set of [`Optimization`]s (SPEC §3): a task lists the
/// ones it requires, a node the ones it supports.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Optimizations(u8);

impl Optimizations {
    /// Every defined bit: one per [`Optimization`].
    pub const ALL_BITS: u8 = {
        let mut bits = 0;
        let mut i = 0;
        while i < Optimization::ALL.len() {
            bits |= Optimization::ALL[i].bit();
            i += 1;
        }
        bits
    };

    /// The set with these bits, or `None` if an undefined bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::ALL_BITS == 0).then_some(Optimizations(bits))
    }

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether `optimization` is in the set.
    pub fn contains(self, optimization: Optimization) -> bool {
        self.0 & optimization.bit() != 0
    }

    /// The optimizations in the set, lowest bit first.
    pub fn iter(self) -> impl Iterator<Item = Optimization> {
        Optimization::ALL.iter().copied().filter(move |o| self.contains(*o))
    }

    /// Whether every optimization in `required` is also in `self`.
    pub fn supports_all(self, required: Optimizations) -> bool {
        self.0 & required.0 == required.0
    }
}

impl FromIterator<Optimization> for Optimizations {
    fn from_iter<I: IntoIterator<Item = Optimization>>(optimizations: I) -> Self {
        Optimizations(optimizations.into_iter().fold(0, |bits, o| bits | o.bit()))
    }
}

/// Reputation bounds (SPEC §3).
pub mod reputation {
    /// The highest reputation a node can have.
    pub const MAX: u16 = 1000;
    /// The reputation of a newly registered node.
    pub const INITIAL: u16 = 100;
    /// Lost on each slash for a timeout (SPEC §9.1).
    pub const TIMEOUT_PENALTY: u16 = 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_round_trip_and_match_spec() {
        for role in TaskRole::ALL {
            assert_eq!(TaskRole::from_wire(role.to_wire()), Some(*role));
        }
        assert_eq!(TaskRole::ALL.len(), 8);
        assert_eq!(TaskRole::from_wire(8), None);
        assert_eq!(SecurityLevel::SamplingConsensus.to_wire(), 2);
        assert_eq!(SecurityLevel::from_wire(3), None);
        assert_eq!(DeviceType::NvidiaNvSwitch.to_wire(), 10000);
        assert_eq!(DeviceType::from_wire(1), None);
        assert_eq!(Modality::from_wire(5), Some(Modality::SpeechToText));
        assert_eq!(Modality::from_wire(6), None);
        assert_eq!(Optimization::SpeculativeDecoding.bit(), 1 << 4);
        assert_eq!(Optimization::from_wire(5), None);
    }

    /// Every value has its own name, no alias of one value names another, names are kebab-case,
    /// and a name or alias reads back as its value.
    fn names_are_distinct_and_round_trip<E: WireEnum + PartialEq + core::fmt::Debug>() {
        let mut seen: Vec<&str> = Vec::new();
        for value in E::ALL {
            for word in core::iter::once(value.name()).chain(value.aliases().iter().copied()) {
                assert!(!seen.contains(&word), "{word:?} names two values of {value:?}'s type");
                seen.push(word);
                let kebab = word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                assert!(
                    kebab && !word.starts_with('-') && !word.ends_with('-'),
                    "{word:?} is not kebab-case"
                );
                assert_eq!(E::from_name(word), Some(*value), "{word:?}");
            }
            assert_eq!(E::from_wire(value.to_wire()), Some(*value));
        }
        assert_eq!(E::from_name(""), None);
    }

    #[test]
    fn every_value_has_a_distinct_name_that_reads_back() {
        names_are_distinct_and_round_trip::<TaskRole>();
        names_are_distinct_and_round_trip::<SecurityLevel>();
        names_are_distinct_and_round_trip::<Modality>();
        names_are_distinct_and_round_trip::<DeviceType>();
        names_are_distinct_and_round_trip::<Optimization>();
    }

    #[test]
    fn names_are_exact_and_match_what_clients_print() {
        assert_eq!(TaskRole::ChatCompletions.name(), "chat-completions");
        assert_eq!(Modality::TextToEmbedding.name(), "text-to-embedding");
        assert_eq!(DeviceType::IntelCpu.name(), "intel-cpu");
        assert_eq!(Optimization::FlashAttention.name(), "flash-attention");
        assert_eq!(SecurityLevel::ConfidentialCompute.name(), "tee");
        assert_eq!(SecurityLevel::from_name("confidential"), Some(SecurityLevel::ConfidentialCompute));
        assert_eq!(TaskRole::from_name("Chat-Completions"), None);
        assert_eq!(TaskRole::from_name("chat_completions"), None);
    }

    #[test]
    fn optimization_bits() {
        assert_eq!(Optimizations::ALL_BITS, 0b1_1111);
        assert!(Optimizations::from_bits(0b10_0000).is_none());
        let node = Optimizations::from_bits(0b1_0101).unwrap();
        assert!(node.supports_all(Optimizations::from_bits(0b0_0101).unwrap()));
        assert!(!node.supports_all(Optimizations::from_bits(0b0_0010).unwrap()));
        assert!(node.supports_all(Optimizations::default()));
        let members: Vec<Optimization> = node.iter().collect();
        assert_eq!(
            members,
            [Optimization::FlashAttention, Optimization::Quantization, Optimization::SpeculativeDecoding]
        );
        assert_eq!(members.into_iter().collect::<Optimizations>(), node);
        assert!(!node.contains(Optimization::PromptCaching));
    }
}
