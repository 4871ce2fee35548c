//! The protocol's enumerations (SPEC §3). Their numbers are part of the wire format: calls carry
//! the raw number and the contract turns it into one of these types or refuses the call.

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident : $repr:ty { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)+ }) => {
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
            pub fn to_wire(self) -> $repr {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The value with this wire number, if there is one.
            pub fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// What a task computes.
    TaskRole: u16 {
        ChatCompletions = 0,
        Embeddings = 1,
        Vision = 2,
        ImageGeneration = 3,
        TextToSpeech = 4,
        SpeechToText = 5,
        FineTuning = 6,
        Training = 7,
    }
);

wire_enum!(
    /// How the result of a stack is verified (SPEC §6).
    SecurityLevel: u16 {
        /// The node is trusted; the owner may contest the claimed units.
        NoSecurity = 0,
        /// The node runs in a TEE and signs its settlement with an attested enclave key.
        ConfidentialCompute = 1,
        /// Randomly sampled attesters re-execute the stack and must agree.
        SamplingConsensus = 2,
    }
);

wire_enum!(
    /// A model's input and output kinds.
    Modality: u16 {
        TextToText = 0,
        TextToImage = 1,
        TextToEmbedding = 2,
        ImageToText = 3,
        TextToSpeech = 4,
        SpeechToText = 5,
    }
);

wire_enum!(
    /// The hardware that holds a confidential-compute enclave key.
    DeviceType: u16 {
        IntelCpu = 0,
        AmdCpu = 100,
        ArmCpu = 200,
        NvidiaGpu = 300,
        NvidiaNvSwitch = 10000,
    }
);

/// A set of inference optimizations as a bit set (SPEC §3): bit 0 flash attention, 1 prompt
/// caching, 2 quantization, 3 pruning, 4 speculative decoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Optimizations(u8);

impl Optimizations {
    /// Flash attention.
    pub const FLASH_ATTENTION: u8 = 1 << 0;
    /// Prompt caching.
    pub const PROMPT_CACHING: u8 = 1 << 1;
    /// Quantization.
    pub const QUANTIZATION: u8 = 1 << 2;
    /// Pruning.
    pub const PRUNING: u8 = 1 << 3;
    /// Speculative decoding.
    pub const SPECULATIVE_DECODING: u8 = 1 << 4;
    /// Every defined bit.
    pub const ALL_BITS: u8 = 0b1_1111;

    /// The set with these bits, or `None` if an undefined bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::ALL_BITS == 0).then_some(Optimizations(bits))
    }

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every optimization in `required` is also in `self`.
    pub fn supports_all(self, required: Optimizations) -> bool {
        self.0 & required.0 == required.0
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
    }

    #[test]
    fn optimization_bits() {
        assert!(Optimizations::from_bits(0b10_0000).is_none());
        let node = Optimizations::from_bits(0b1_0101).unwrap();
        assert!(node.supports_all(Optimizations::from_bits(0b0_0101).unwrap()));
        assert!(!node.supports_all(Optimizations::from_bits(0b0_0010).unwrap()));
        assert!(node.supports_all(Optimizations::default()));
    }
}
