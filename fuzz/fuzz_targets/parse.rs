//! The stored-value parser on arbitrary bytes: `parse`, `parse_into`,
//! `is_well_formed` and `version_of` never panic, agree with each other and
//! with docs/format.md's rule written out here, and a parsed value
//! re-serializes (lowercase) to the input in lowercase, which parses to the
//! same envelope.
#![no_main]

use fieldcrypt::error::FieldCryptError;
use fieldcrypt::format;
use fieldcrypt::reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &[u8]| {
    let well_formed = format::is_well_formed(s);
    assert_eq!(well_formed, reference::well_formed(s), "is_well_formed vs the rule");
    let parsed = format::parse(s);
    // parse_into clears its buffer first: start from leftovers
    let mut ct = vec![0xa5; s.len() % 7];
    let header = format::parse_into(s, &mut ct);
    let version = format::version_of(s);
    match parsed {
        Ok(env) => {
            assert!(well_formed);
            assert_eq!(header, Ok((env.version, env.iv, env.tag)));
            assert_eq!(ct, env.ciphertext);
            assert_eq!(version, Ok(env.version));
            let out = format::serialize(&env.version, &env.iv, &env.tag, &env.ciphertext);
            assert_eq!(out.as_bytes(), s.to_ascii_lowercase(), "re-serialized");
            assert_eq!(out.len(), format::stored_len(env.ciphertext.len()));
            assert!(format::is_well_formed(&out));
            assert_eq!(format::parse(&out), Ok(env));
        }
        Err(e) => {
            assert!(!well_formed);
            assert_eq!(e, FieldCryptError::InvalidFormat);
            assert_eq!(header, Err(FieldCryptError::InvalidFormat));
            assert_eq!(version, Err(FieldCryptError::InvalidFormat));
        }
    }
    // key versions given by callers: exactly two ASCII digits
    let head = &s[..s.len().min(3)];
    assert_eq!(format::parse_version_bytes(head).is_ok(), head.len() == 2 && head.iter().all(u8::is_ascii_digit));
});
