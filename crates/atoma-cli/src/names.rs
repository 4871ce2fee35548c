//! The protocol's enumerations by name (SPEC §3), for arguments and for display.
//!
//! Every parser also takes the raw wire number, and passes numbers the contract does not know
//! through unchanged, so that the contract answers with its own named error (`EInvalidTaskRole`
//! for role 9) instead of the CLI guessing.

/// Task roles, in wire order.
pub const ROLES: &[&str] = &[
    "chat-completions",
    "embeddings",
    "vision",
    "image-generation",
    "text-to-speech",
    "speech-to-text",
    "fine-tuning",
    "training",
];
/// Security levels, in wire order.
pub const SECURITY_LEVELS: &[&str] = &["none", "tee", "sampling"];
/// Model modalities, in wire order.
pub const MODALITIES: &[&str] = &[
    "text-to-text",
    "text-to-image",
    "text-to-embedding",
    "image-to-text",
    "text-to-speech",
    "speech-to-text",
];
/// Device types and their wire numbers.
pub const DEVICES: &[(&str, u16)] =
    &[("intel-cpu", 0), ("amd-cpu", 100), ("arm-cpu", 200), ("nvidia-gpu", 300), ("nvidia-nvswitch", 10000)];
/// Optimization bits, bit 0 first.
pub const OPTIMIZATIONS: &[&str] =
    &["flash-attention", "prompt-caching", "quantization", "pruning", "speculative-decoding"];

fn by_position(text: &str, names: &[&str], what: &str) -> Result<u16, String> {
    if let Ok(n) = text.parse::<u16>() {
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase().replace('_', "-");
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| u16::try_from(i).ok())
        .ok_or_else(|| format!("{text:?} is not a {what}: use a number or one of {}", names.join(", ")))
}

/// A task role by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_role(text: &str) -> Result<u16, String> {
    by_position(text, ROLES, "task role")
}

/// A security level by name (`none`, `tee`, `sampling`, or the long names) or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_security(text: &str) -> Result<u16, String> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "no-security" => Ok(0),
        "confidential-compute" | "confidential" => Ok(1),
        "sampling-consensus" => Ok(2),
        _ => by_position(text, SECURITY_LEVELS, "security level"),
    }
}

/// A model modality by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_modality(text: &str) -> Result<u16, String> {
    by_position(text, MODALITIES, "modality")
}

/// A device type by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_device(text: &str) -> Result<u16, String> {
    if let Ok(n) = text.parse::<u16>() {
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase().replace('_', "-");
    DEVICES.iter().find(|(n, _)| *n == lower).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = DEVICES.iter().map(|(n, _)| *n).collect();
        format!("{text:?} is not a device type: use a number or one of {}", names.join(", "))
    })
}

/// An optimization set: a number (the bit set), `none`, or names joined by commas.
///
/// # Errors
/// A message listing the names.
pub fn parse_optimizations(text: &str) -> Result<u8, String> {
    if let Ok(n) = text.parse::<u8>() {
        return Ok(n);
    }
    if text.eq_ignore_ascii_case("none") || text.is_empty() {
        return Ok(0);
    }
    text.split(',').try_fold(0u8, |bits, name| {
        let lower = name.trim().to_ascii_lowercase().replace('_', "-");
        let bit = OPTIMIZATIONS.iter().position(|n| *n == lower).ok_or_else(|| {
            format!("{name:?} is not an optimization: use a number or {}", OPTIMIZATIONS.join(","))
        })?;
        Ok(bits | (1u8 << bit))
    })
}

/// The name of a wire number from `names`, or the number itself.
fn name_of(value: u16, names: &[&str]) -> String {
    names.get(usize::from(value)).map_or_else(|| value.to_string(), |n| (*n).to_string())
}

/// A role's name.
pub fn role_name(value: u16) -> String {
    name_of(value, ROLES)
}

/// A security level's name.
pub fn security_name(value: u16) -> String {
    name_of(value, SECURITY_LEVELS)
}

/// A modality's name.
pub fn modality_name(value: u16) -> String {
    name_of(value, MODALITIES)
}

/// A device type's name.
pub fn device_name(value: u16) -> String {
    DEVICES.iter().find(|(_, v)| *v == value).map_or_else(|| value.to_string(), |(n, _)| (*n).to_string())
}

/// `flash-attention,quantization`, or `none`.
pub fn optimizations_name(bits: u8) -> String {
    let names: Vec<&str> =
        OPTIMIZATIONS.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n).collect();
    let unknown = bits & !0b1_1111;
    match (names.is_empty(), unknown) {
        (true, 0) => "none".to_string(),
        (_, 0) => names.join(","),
        _ => format!("{bits:#07b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_read() {
        assert_eq!(parse_role("chat-completions"), Ok(0));
        assert_eq!(parse_role("Image_Generation"), Ok(3));
        assert_eq!(parse_role("9"), Ok(9));
        assert!(parse_role("cooking").is_err());
        assert_eq!(parse_security("sampling"), Ok(2));
        assert_eq!(parse_security("confidential-compute"), Ok(1));
        assert_eq!(parse_modality("text-to-image"), Ok(1));
        assert_eq!(parse_device("nvidia-gpu"), Ok(300));
        assert_eq!(parse_device("7"), Ok(7));
        assert!(parse_device("tpu").is_err());
        assert_eq!(parse_optimizations("flash-attention,quantization"), Ok(0b101));
        assert_eq!(parse_optimizations("none"), Ok(0));
        assert_eq!(parse_optimizations("31"), Ok(31));
        assert!(parse_optimizations("warp").is_err());
    }

    #[test]
    fn numbers_are_named() {
        assert_eq!(role_name(1), "embeddings");
        assert_eq!(role_name(42), "42");
        assert_eq!(security_name(2), "sampling");
        assert_eq!(device_name(10000), "nvidia-nvswitch");
        assert_eq!(optimizations_name(0b101), "flash-attention,quantization");
        assert_eq!(optimizations_name(0), "none");
        assert_eq!(modality_name(0), "text-to-text");
    }
}
