//! Blind index values of src/blind_index.rs (the `hmac` and `hkdf` crates,
//! the cached path keys of src/index_keys.rs, single values and batches)
//! against src/reference.rs (HMAC written out per RFC 2104 over SHA-256,
//! HKDF per RFC 5869), on arbitrary keys, collections, paths and inputs.
//!
//! The input (zero-padded to 37 bytes):
//!
//! | bytes  | what |
//! |--------|------|
//! | 0..32  | the index key |
//! | 32     | the key version, mod 100 |
//! | 33     | the collection's length (mod 65) |
//! | 34     | the path's length (mod 129) |
//! | 35..37 | where to split the input into a batch of values, u16 LE |
//! | 37..   | the collection, then the path, then the input (as far as the bytes go) |
#![no_main]

use fieldcrypt::blind_index::{index_many, index_one, scope_info};
use fieldcrypt::index_keys::{IndexKey, IndexKeyring};
use fieldcrypt::keyring::Keyring;
use fieldcrypt::reference;
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 37;

fuzz_target!(|data: &[u8]| {
    let mut h = [0u8; HEADER];
    let n = data.len().min(HEADER);
    h[..n].copy_from_slice(&data[..n]);
    let rest = &data[n..];

    let key: [u8; 32] = h[..32].try_into().unwrap();
    let v = h[32] % 100;
    let version = [b'0' + v / 10, b'0' + v % 10];
    let c_len = usize::from(h[33] % 65).min(rest.len());
    let p_len = usize::from(h[34] % 129).min(rest.len() - c_len);
    let (collection, rest) = rest.split_at(c_len);
    let (path, input) = rest.split_at(p_len);
    let split = usize::from(u16::from_le_bytes([h[35], h[36]])) % (input.len() + 1);

    let mut ring = IndexKeyring::new();
    ring.insert(version, IndexKey::from_bytes(&key), &Keyring::new()).expect("no encryption keys");
    let mut info = vec![0xa5];
    if !scope_info(collection, path, &mut info) {
        assert!(info.is_empty());
        assert!(collection.is_empty() || path.is_empty() || collection.contains(&0) || path.contains(&0));
        return;
    }

    let want = reference::blind_index(&key, &version, collection, path, input);
    let got = index_one(&mut ring, &version, &info, input).expect("key present");
    assert_eq!(&got[..], want.as_bytes(), "index value differs from the reference");

    // a batch (its path key now cached) of the two halves, the whole and an empty input
    let parts = [&input[..split], &input[split..], input, &[][..]];
    let many = index_many(&mut ring, &version, &info, parts).expect("key present");
    for (part, value) in parts.iter().zip(&many) {
        let want = reference::blind_index(&key, &version, collection, path, part);
        assert_eq!(&value[..], want.as_bytes(), "batch value differs from the reference");
    }
    assert_eq!(many[2], got);
});
