//! Known-answer tests: Wycheproof AES-256-GCM vectors with 12- and 16-byte IVs.
//!
//! The data is `src/testdata/wycheproof_aes256_gcm.txt` (source, commit and
//! license in its header and in `src/testdata/README.md`), one vector a line:
//! `tcId|key|iv|aad|msg|ct|tag|result|flags`, hex fields possibly empty.
//!
//! Every vector goes through [`check`]:
//! * with the aes-gcm types directly, `AesGcm<Aes256, U12>` or
//!   `AesGcm<Aes256, U16>` by IV length, AAD as given: a valid vector must
//!   encrypt to exactly `ct`/`tag` (detached and combined APIs) and decrypt to
//!   `msg`, and must stop decrypting after any one bit of the tag, or one of
//!   several bits of the ciphertext, AAD or IV, is flipped; an invalid vector
//!   must not decrypt. A failed decryption must leave the buffer untouched.
//! * for 16-byte IVs and empty AAD, also through the product:
//!   `Key::from_bytes` + `cipher::encrypt_with_iv` must write exactly
//!   `format::serialize(b"01", iv, tag, ct)`, and `format::parse` +
//!   `cipher::decrypt_envelope` must give back `msg` (or fail, for invalid
//!   vectors and tampered values, with `AuthenticationFailed`).
//!
//! Failures are collected, not stopped at, so one run names every bad tcId.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Nonce, Payload, Tag};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;

use crate::cipher;
use crate::error::FieldCryptError;
use crate::format::{self, IV_LEN, TAG_LEN};
use crate::keyring::{Aes256Gcm16, Key, KEY_LEN};

const DATA: &str = include_str!("testdata/wycheproof_aes256_gcm.txt");
const VERSION: &[u8; 2] = b"01";

/// The product's cipher is the 16-byte-IV type tested here, and aes-gcm's
/// `Aes256Gcm` is the 12-byte one (compile-time checks).
const _: fn(Aes256Gcm16) -> AesGcm<Aes256, U16> = |c| c;
const _: fn(aes_gcm::Aes256Gcm) -> AesGcm<Aes256, U12> = |c| c;

#[derive(Debug, Clone)]
struct Vector {
    tc_id: u32,
    key: Vec<u8>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    msg: Vec<u8>,
    ct: Vec<u8>,
    tag: Vec<u8>,
    valid: bool,
    flags: String,
}

fn parse_line(line: &str) -> Result<Vector, String> {
    let f: Vec<&str> = line.split('|').collect();
    let [tc_id, key, iv, aad, msg, ct, tag, result, flags] = f[..] else {
        return Err(format!("expected 9 fields, found {}", f.len()));
    };
    let hex = |name: &str, s: &str| hex::decode(s).map_err(|e| format!("{name}: {e}"));
    let v = Vector {
        tc_id: tc_id.parse().map_err(|e| format!("tcId {tc_id:?}: {e}"))?,
        key: hex("key", key)?,
        iv: hex("iv", iv)?,
        aad: hex("aad", aad)?,
        msg: hex("msg", msg)?,
        ct: hex("ct", ct)?,
        tag: hex("tag", tag)?,
        valid: match result {
            "valid" => true,
            "invalid" => false,
            r => return Err(format!("result {r:?} is neither valid nor invalid")),
        },
        flags: flags.to_owned(),
    };
    if v.key.len() != KEY_LEN || v.tag.len() != TAG_LEN || v.msg.len() != v.ct.len() {
        return Err("key must be 32 bytes, tag 16, msg and ct of one length".into());
    }
    Ok(v)
}

fn parse(data: &str) -> Result<Vec<Vector>, String> {
    data.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| parse_line(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn vectors() -> Vec<Vector> {
    parse(DATA).unwrap_or_else(|e| panic!("testdata/wycheproof_aes256_gcm.txt: {e}"))
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[bit / 8] ^= 1 << (bit % 8);
    b
}

/// First, a middle and the last bit of a non-empty field.
fn some_bits(len: usize) -> Vec<usize> {
    if len == 0 {
        vec![]
    } else {
        vec![0, len * 4 + 3, len * 8 - 1]
    }
}

/// Runs one vector through everything that applies to it; returns what failed.
fn check(v: &Vector) -> Vec<String> {
    let mut errs = match v.iv.len() {
        12 => check_aead::<AesGcm<Aes256, U12>>(v),
        16 => check_aead::<AesGcm<Aes256, U16>>(v),
        n => vec![format!("no cipher for a {n}-byte IV")],
    };
    if v.iv.len() == IV_LEN && v.aad.is_empty() {
        errs.extend(check_product(v));
    }
    errs.into_iter().map(|e| format!("tcId {} [{}]: {e}", v.tc_id, v.flags)).collect()
}

/// Decryption of (`iv`, `aad`, `ct`, `tag`) that must fail, leaving the buffer as it was.
/// A nonce of the cipher's size (the vectors' IV lengths match the type chosen for them).
fn nonce_of<C: AeadInOut>(iv: &[u8]) -> Nonce<C> {
    Nonce::<C>::try_from(iv).expect("IV length matches the cipher")
}

fn tag_of<C: AeadInOut>(tag: &[u8]) -> Tag<C> {
    Tag::<C>::try_from(tag).expect("16-byte tag")
}

fn must_not_open<C: AeadInOut>(
    c: &C,
    iv: &[u8],
    aad: &[u8],
    ct: &[u8],
    tag: &[u8],
    what: &str,
    errs: &mut Vec<String>,
) {
    let mut buf = ct.to_vec();
    match c.decrypt_inout_detached(&nonce_of::<C>(iv), aad, buf.as_mut_slice().into(), &tag_of::<C>(tag)) {
        Ok(()) => errs.push(format!("{what}: detached decryption succeeded")),
        Err(_) if buf != ct => errs.push(format!("{what}: failed decryption changed the buffer")),
        Err(_) => {}
    }
    let combined = [ct, tag].concat();
    if c.decrypt(&nonce_of::<C>(iv), Payload { msg: &combined, aad }).is_ok() {
        errs.push(format!("{what}: combined decryption succeeded"));
    }
}

fn check_aead<C: KeyInit + AeadInOut>(v: &Vector) -> Vec<String> {
    let mut errs = Vec::new();
    let c = match C::new_from_slice(&v.key) {
        Ok(c) => c,
        Err(_) => return vec!["key rejected".into()],
    };
    let nonce = &nonce_of::<C>(&v.iv);

    if !v.valid {
        must_not_open(&c, &v.iv, &v.aad, &v.ct, &v.tag, "invalid vector", &mut errs);
        return errs;
    }

    // Encryption, detached and combined.
    let mut buf = v.msg.clone();
    match c.encrypt_inout_detached(nonce, &v.aad, buf.as_mut_slice().into()) {
        Ok(tag) => {
            if buf != v.ct {
                errs.push(format!("encrypt: ct {} != {}", hex::encode(&buf), hex::encode(&v.ct)));
            }
            if tag.as_slice() != v.tag {
                errs.push(format!("encrypt: tag {} != {}", hex::encode(tag), hex::encode(&v.tag)));
            }
        }
        Err(_) => errs.push("encrypt failed".into()),
    }
    let combined = [&v.ct[..], &v.tag[..]].concat();
    match c.encrypt(nonce, Payload { msg: &v.msg, aad: &v.aad }) {
        Ok(out) if out == combined => {}
        Ok(out) => errs.push(format!("combined encrypt: {} != ct||tag", hex::encode(out))),
        Err(_) => errs.push("combined encrypt failed".into()),
    }

    // Decryption, detached and combined.
    let mut buf = v.ct.clone();
    match c.decrypt_inout_detached(nonce, &v.aad, buf.as_mut_slice().into(), &tag_of::<C>(&v.tag)) {
        Ok(()) if buf == v.msg => {}
        Ok(()) => errs.push(format!("decrypt: {} != msg", hex::encode(&buf))),
        Err(_) => errs.push("decrypt failed".into()),
    }
    match c.decrypt(nonce, Payload { msg: &combined, aad: &v.aad }) {
        Ok(out) if out == v.msg => {}
        Ok(out) => errs.push(format!("combined decrypt: {} != msg", hex::encode(out))),
        Err(_) => errs.push("combined decrypt failed".into()),
    }

    // Tampering: every tag bit; first, middle and last bit of ct, aad and iv.
    for bit in 0..TAG_LEN * 8 {
        must_not_open(&c, &v.iv, &v.aad, &v.ct, &flip(&v.tag, bit), &format!("tag bit {bit} flipped"), &mut errs);
    }
    for bit in some_bits(v.ct.len()) {
        must_not_open(&c, &v.iv, &v.aad, &flip(&v.ct, bit), &v.tag, &format!("ct bit {bit} flipped"), &mut errs);
    }
    for bit in some_bits(v.aad.len()) {
        must_not_open(&c, &v.iv, &flip(&v.aad, bit), &v.ct, &v.tag, &format!("aad bit {bit} flipped"), &mut errs);
    }
    for bit in some_bits(v.iv.len()) {
        must_not_open(&c, &flip(&v.iv, bit), &v.aad, &v.ct, &v.tag, &format!("iv bit {bit} flipped"), &mut errs);
    }
    errs
}

/// The product path: 16-byte IV, no AAD, the stored `VV:IV:TAG:CT` string.
fn check_product(v: &Vector) -> Vec<String> {
    let mut errs = Vec::new();
    let key = Key::from_bytes(v.key.as_slice().try_into().expect("32-byte key"));
    let iv: [u8; IV_LEN] = v.iv.as_slice().try_into().expect("16-byte IV");
    let tag: [u8; TAG_LEN] = v.tag.as_slice().try_into().expect("16-byte tag");
    let stored = format::serialize(VERSION, &iv, &tag, &v.ct);
    let auth_failed = Err(FieldCryptError::AuthenticationFailed(*VERSION));

    let open = |s: &str| -> Result<Vec<u8>, FieldCryptError> {
        let env = format::parse(s)?;
        Ok(cipher::decrypt_envelope(&key, env, b"")?.to_vec())
    };

    if !v.valid {
        if open(&stored) != auth_failed {
            errs.push(format!("product: invalid vector {stored} was not an authentication failure"));
        }
        return errs;
    }

    match cipher::encrypt_with_iv(&key, VERSION, &iv, b"", &v.msg) {
        Ok(s) if s == stored => {}
        Ok(s) => errs.push(format!("product: encrypt_with_iv gave {s}, expected {stored}")),
        Err(e) => errs.push(format!("product: encrypt_with_iv failed: {e}")),
    }
    if !format::is_well_formed(&stored) {
        errs.push(format!("product: {stored} is not well formed"));
    }
    match open(&stored) {
        Ok(m) if m == v.msg => {}
        other => errs.push(format!("product: decrypting {stored} gave {other:?}")),
    }
    let mut tampered: Vec<(String, String)> = (0..TAG_LEN * 8)
        .map(|b| {
            (
                format!("tag bit {b}"),
                format::serialize(VERSION, &iv, flip(&tag, b).as_slice().try_into().unwrap(), &v.ct),
            )
        })
        .collect();
    tampered.extend(
        some_bits(v.ct.len())
            .into_iter()
            .map(|b| (format!("ct bit {b}"), format::serialize(VERSION, &iv, &tag, &flip(&v.ct, b)))),
    );
    tampered.extend(some_bits(IV_LEN).into_iter().map(|b| {
        (format!("iv bit {b}"), format::serialize(VERSION, flip(&iv, b).as_slice().try_into().unwrap(), &tag, &v.ct))
    }));
    for (what, s) in tampered {
        if open(&s) != auth_failed {
            errs.push(format!("product: {what} flipped was not an authentication failure"));
        }
    }
    errs
}

fn run(iv_len: usize) -> usize {
    let vs: Vec<Vector> = vectors().into_iter().filter(|v| v.iv.len() == iv_len).collect();
    let errs: Vec<String> = vs.iter().flat_map(check).collect();
    assert!(errs.is_empty(), "{} failure(s):\n{}", errs.len(), errs.join("\n"));
    vs.len()
}

#[test]
fn wycheproof_aes256_gcm_12_byte_iv() {
    assert_eq!(run(12), 66);
}

#[test]
fn wycheproof_aes256_gcm_16_byte_iv_and_product_path() {
    assert_eq!(run(16), 19);
}

/// The data file holds the two whole groups, and nothing else.
#[test]
fn data_file_is_complete() {
    let vs = vectors();
    let ids = |n: usize| -> Vec<u32> { vs.iter().filter(|v| v.iv.len() == n).map(|v| v.tc_id).collect() };
    assert_eq!(ids(12), (91..=156).collect::<Vec<_>>());
    assert_eq!(ids(16), (240..=258).collect::<Vec<_>>());
    assert_eq!(vs.len(), 66 + 19);
    let count = |n: usize, valid: bool| vs.iter().filter(|v| v.iv.len() == n && v.valid == valid).count();
    assert_eq!((count(12, true), count(12, false)), (39, 27));
    assert_eq!((count(16, true), count(16, false)), (19, 0));
    // every 16-byte-IV vector has empty AAD, so all of them take the product path
    assert!(vs.iter().filter(|v| v.iv.len() == 16).all(|v| v.aad.is_empty()));
    assert!(vs.iter().any(|v| v.iv.len() == 12 && !v.aad.is_empty()));
    assert!(
        DATA.contains("C2SP/wycheproof testvectors_v1/aes_gcm_test.json @ 6fc4a87a4c4e2264b2f0d6862bbd900b5b25717e")
    );
}

/// The checks are not vacuous: a wrong expectation is reported.
#[test]
fn check_reports_wrong_vectors() {
    let vs = vectors();
    for iv_len in [12, 16] {
        let good = vs.iter().find(|v| v.iv.len() == iv_len && v.valid && !v.msg.is_empty()).unwrap();
        assert!(check(good).is_empty());
        let mut bad = good.clone();
        bad.ct[0] ^= 1;
        bad.msg[0] ^= 1; // a consistent msg/ct pair for a keystream, but the tag no longer fits
        let errs = check(&bad);
        assert!(errs.iter().any(|e| e.contains("encrypt: tag")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("decrypt failed")), "{errs:?}");
        if iv_len == 16 {
            assert!(errs.iter().any(|e| e.contains("product: encrypt_with_iv gave")), "{errs:?}");
            assert!(errs.iter().any(|e| e.contains("product: decrypting")), "{errs:?}");
        }
        let mut bad = good.clone();
        bad.tag[15] ^= 0x80;
        assert!(check(&bad).iter().any(|e| e.contains("encrypt: tag")));
        // a good vector labelled invalid must be caught: it decrypts
        let mut bad = good.clone();
        bad.valid = false;
        assert!(check(&bad).iter().any(|e| e.contains("decryption succeeded")));
        if iv_len == 16 {
            assert!(check(&bad).iter().any(|e| e.contains("product: invalid vector")));
        }
    }
    let mut odd = vs[0].clone();
    odd.iv.push(0);
    assert_eq!(check(&odd).len(), 1);
}

#[test]
fn line_parser_is_strict() {
    let ok = "7|000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f|00112233445566778899aabb||00|11|ffffffffffffffffffffffffffffffff|valid|Ktv";
    let v = parse_line(ok).unwrap();
    assert_eq!(
        (v.tc_id, v.aad.len(), v.msg, v.ct, v.valid, v.flags.as_str()),
        (7, 0, vec![0], vec![0x11], true, "Ktv")
    );
    assert!(!parse_line(&ok.replace("|valid|", "|invalid|")).unwrap().valid);
    for bad in [
        ok.replace("|valid|", "|acceptable|"),
        ok.replace("|Ktv", ""),
        format!("{ok}|x"),
        ok.replace("|00|", "|0|"),
        ok.replace("|00|", "|zz|"),
        ok.replace("|11|", "||"),
        ok.replace("7|", "x|"),
        ok.replace("|ffffffffffffffffffffffffffffffff|", "|ff|"),
        ok.replace("1e1f|", "1e|"),
    ] {
        assert!(parse_line(&bad).is_err(), "{bad}");
    }
    assert!(parse("# comment\n\n").unwrap().is_empty());
    assert!(parse(&format!("# c\n{ok}\n1|2\n")).unwrap_err().starts_with("line 3:"));
}
