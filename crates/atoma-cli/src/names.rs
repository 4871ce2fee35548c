//! The protocol's enumerations by name (SPEC §3), for arguments and for display.
//!
//! The names themselves live in `atoma_contract::enums`, beside the wire numbers; this module
//! only adds what is the CLI's choice: case and `_` are forgiven, optimization sets are names
//! joined by commas or `none`, and every parser also takes the raw wire number. Numbers the
//! contract does not know pass through unchanged, so that the contract answers with its own named
//! error (`EInvalidTaskRole` for role 9) instead of the CLI guessing.

use atoma_contract::enums::{
    DeviceType, Modality, Optimization, Optimizations, SecurityLevel, TaskRole, WireEnum,
};

/// What the CLI accepts for a name: any case, `_` for `-`.
fn normalize(text: &str) -> String {
    text.to_ascii_lowercase().replace('_', "-")
}

/// Every value's printed name, joined with `separator`.
fn names<E: WireEnum>(separator: &str) -> String {
    E::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(separator)
}

/// A value by name (or alias) or by number.
fn parse_wire<E: WireEnum<Wire = u16>>(text: &str, what: &str) -> Result<u16, String> {
    if let Ok(n) = text.parse::<u16>() {
        return Ok(n);
    }
    E::from_name(&normalize(text))
        .map(E::to_wire)
        .ok_or_else(|| format!("{text:?} is not a {what}: use a number or one of {}", names::<E>(", ")))
}

/// The name of a wire number, or the number itself when the contract knows no such value.
fn name_of<E: WireEnum<Wire = u16>>(value: u16) -> String {
    E::from_wire(value).map_or_else(|| value.to_string(), |v| v.name().to_string())
}

/// A task role by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_role(text: &str) -> Result<u16, String> {
    parse_wire::<TaskRole>(text, "task role")
}

/// A security level by name (`none`, `tee`, `sampling`, or the long names) or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_security(text: &str) -> Result<u16, String> {
    parse_wire::<SecurityLevel>(text, "security level")
}

/// A model modality by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_modality(text: &str) -> Result<u16, String> {
    parse_wire::<Modality>(text, "modality")
}

/// A device type by name or number.
///
/// # Errors
/// A message listing the names.
pub fn parse_device(text: &str) -> Result<u16, String> {
    parse_wire::<DeviceType>(text, "device type")
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
    let set: Optimizations = text
        .split(',')
        .map(|name| {
            Optimization::from_name(&normalize(name.trim())).ok_or_else(|| {
                format!("{name:?} is not an optimization: use a number or {}", names::<Optimization>(","))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(set.bits())
}

/// A role's name.
pub fn role_name(value: u16) -> String {
    name_of::<TaskRole>(value)
}

/// A security level's name.
pub fn security_name(value: u16) -> String {
    name_of::<SecurityLevel>(value)
}

/// A modality's name.
pub fn modality_name(value: u16) -> String {
    name_of::<Modality>(value)
}

/// A device type's name.
pub fn device_name(value: u16) -> String {
    name_of::<DeviceType>(value)
}

/// `flash-attention,quantization`, `none`, or the bits in binary when one is undefined.
pub fn optimizations_name(bits: u8) -> String {
    match Optimizations::from_bits(bits) {
        Some(set) if set == Optimizations::default() => "none".to_string(),
        Some(set) => set.iter().map(Optimization::name).collect::<Vec<_>>().join(","),
        None => format!("{bits:#0width$b}", width = 2 + Optimization::ALL.len()),
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
        assert_eq!(parse_optimizations("Flash_Attention, pruning"), Ok(0b1001));
        assert_eq!(parse_security("TEE"), Ok(1));
        assert_eq!(parse_security("no_security"), Ok(0));
        assert_eq!(parse_security("confidential"), Ok(1));
        assert_eq!(parse_security("sampling-consensus"), Ok(2));
        assert_eq!(
            parse_security("strong"),
            Err("\"strong\" is not a security level: use a number or one of none, tee, sampling".into())
        );
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
        assert_eq!(optimizations_name(0b10_0001), "0b100001");
        assert_eq!(optimizations_name(0b100_0000), "0b1000000");
    }
}
