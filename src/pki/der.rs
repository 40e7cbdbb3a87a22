//! DER building blocks: the subscriber certificates' to-be-signed bytes, CRLs, OCSP, CMS and
//! the extensions rcgen does not build itself for the CA certificates (certificate policies
//! with 2.25 UUID arcs, authority information access).

/// Encodes a tag-length-value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Appends the tag and (definite, minimal) length of a TLV whose content is `len` bytes, for
/// writers that put the content straight after it.
pub fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A non-negative INTEGER of big-endian bytes: leading zero octets dropped (one kept for
/// zero), one added when the top bit is set (serial numbers, CRL numbers).
pub fn unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let digits = &bytes[start..];
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(0x02, &content)
}

/// A BIT STRING of whole bytes (no unused bits): how signatures are carried.
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    push_header(&mut out, 0x03, bytes.len() + 1);
    out.push(0);
    out.extend_from_slice(bytes);
    out
}

/// GeneralizedTime of a Unix time, UTC, to the second (RFC 5280 §4.1.2.5.2; OCSP, TSTInfo).
pub fn generalized_time(unix: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    push_time(&mut out, unix, false);
    out
}

/// X.509 Time (RFC 5280 §4.1.2.5, RFC 5652 §11.3): UTCTime for 1950–2049, GeneralizedTime
/// otherwise.
pub fn x509_time(unix: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    push_x509_time(&mut out, unix);
    out
}

/// Appends [`x509_time`] to `out` without allocating (CRLs write a million of them).
pub fn push_x509_time(out: &mut Vec<u8>, unix: i64) {
    push_time(out, unix, true);
}

fn push_time(out: &mut Vec<u8>, unix: i64, utc_window: bool) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = t.year().clamp(0, 9999) as u32;
    let utc = utc_window && (1950..2050).contains(&year);
    let mut digits = [0u8; 14];
    let parts = [
        year / 100,
        year % 100,
        u8::from(t.month()) as u32,
        t.day() as u32,
        t.hour() as u32,
        t.minute() as u32,
        t.second() as u32,
    ];
    for (i, v) in parts.iter().enumerate() {
        digits[2 * i] = b'0' + (v / 10) as u8;
        digits[2 * i + 1] = b'0' + (v % 10) as u8;
    }
    let body = if utc { &digits[2..] } else { &digits[..] };
    out.push(if utc { 0x17 } else { 0x18 });
    out.push(body.len() as u8 + 1);
    out.extend_from_slice(body);
    out.push(b'Z');
}

/// A SEQUENCE of already encoded parts, written once into one buffer of the right size.
pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    constructed(0x30, parts)
}

/// A constructed TLV of already encoded parts (SEQUENCE, SET, a context tag).
pub fn constructed(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(len + 6);
    push_header(&mut out, tag, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Encodes a dotted OID, arcs up to 128 bits (2.25 UUID OIDs need that).
pub fn oid(dotted: &str) -> Vec<u8> {
    let mut arcs = dotted.split('.').map(|a| a.parse::<u128>().unwrap_or(0));
    let first = arcs.next().unwrap_or(0);
    let second = arcs.next().unwrap_or(0);
    let mut out = Vec::with_capacity(dotted.len() + 2);
    out.extend_from_slice(&[0x06, 0]);
    push_base128(&mut out, first * 40 + second);
    for arc in arcs {
        push_base128(&mut out, arc);
    }
    // OIDs are nearly always below 128 content octets, a one-octet length; else re-encode.
    let len = out.len() - 2;
    if len >= 0x80 {
        return tlv(0x06, &out[2..]);
    }
    out[1] = len as u8;
    out
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = [0u8; 19];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len();
    for (k, b) in tmp[i..].iter().enumerate() {
        out.push(if i + k + 1 < n { b | 0x80 } else { *b });
    }
}

/// An OID's arcs as u64, for rcgen APIs (only for OIDs whose arcs fit).
pub fn arcs(dotted: &str) -> Vec<u64> {
    dotted.split('.').map(|a| a.parse().unwrap_or(0)).collect()
}

/// An X.509 Extension: SEQUENCE { extnID, critical BOOLEAN (only when TRUE, as DER wants),
/// extnValue OCTET STRING }.
pub fn extension(id: &str, critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid(id)];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(tlv(0x04, &value));
    sequence(&parts)
}

/// GeneralName uniformResourceIdentifier [6] IA5String.
pub fn uri_general_name(uri: &str) -> Vec<u8> {
    tlv(0x86, uri.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_known_values() {
        // id-kp-documentSigning 1.3.6.1.5.5.7.3.36
        assert_eq!(
            oid("1.3.6.1.5.5.7.3.36"),
            hex::decode("06082b06010505070324").unwrap()
        );
        // 2.25.<uuid> starts with 0x69 (2*40+25 = 105) and keeps every arc bit.
        // 2.25.<uuid>: the expected bytes come from `openssl asn1parse -genstr OID:...`.
        assert_eq!(
            oid("2.25.329800735698586629295641978511506172918"),
            hex::decode("06146983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776").unwrap()
        );
    }

    #[test]
    fn times_are_utc_time_in_the_window_and_generalized_outside_it() {
        assert_eq!(x509_time(0), tlv(0x17, b"700101000000Z"));
        assert_eq!(x509_time(1_700_000_000), tlv(0x17, b"231114221320Z"));
        assert_eq!(x509_time(2_600_000_000), tlv(0x18, b"20520522141320Z"));
        assert_eq!(
            generalized_time(1_700_000_000),
            tlv(0x18, b"20231114221320Z")
        );
        assert_eq!(bit_string(&[7, 8]), [0x03, 0x03, 0x00, 7, 8]);
        let t = time::macros::datetime!(2026-11-23 08:30:05 UTC).unix_timestamp();
        assert_eq!(x509_time(t), tlv(0x17, b"261123083005Z"));
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC).unix_timestamp();
        assert_eq!(x509_time(t), tlv(0x18, b"20500101000000Z"));
    }

    #[test]
    fn an_oid_of_more_than_127_octets_takes_the_long_length_form() {
        let dotted = format!("1.2{}", ".16383".repeat(70));
        let der = oid(&dotted);
        assert_eq!(&der[..3], &[0x06, 0x81, 141]);
        assert_eq!(der.len(), 3 + 141);
        assert_eq!(&der[3..5], &[0x2a, 0xff]);
    }

    #[test]
    fn unsigned_integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 5]), [0x02, 1, 5]);
        assert_eq!(unsigned_integer(&[0, 0x80, 1]), [0x02, 3, 0, 0x80, 1]);
        assert_eq!(unsigned_integer(&[0, 0]), [0x02, 1, 0]);
        assert_eq!(unsigned_integer(&[]), [0x02, 1, 0]);
        assert_eq!(unsigned_integer(&[0x7f, 0]), [0x02, 2, 0x7f, 0]);
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let v = tlv(0x04, &[0u8; 300]);
        assert_eq!(&v[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}

/// DigestInfo (RFC 8017 §9.2) around a SHA-2 digest, told apart by its length; what RSA
/// PKCS #1 v1.5 signs.
pub fn digest_info(digest: &[u8]) -> Option<Vec<u8>> {
    let alg = match digest.len() {
        32 => "2.16.840.1.101.3.4.2.1",
        48 => "2.16.840.1.101.3.4.2.2",
        64 => "2.16.840.1.101.3.4.2.3",
        _ => return None,
    };
    Some(sequence(&[
        sequence(&[oid(alg), vec![0x05, 0x00]]),
        tlv(0x04, digest),
    ]))
}

/// Splits the first tag-length-value off `input`: (the whole TLV, its content, the rest).
/// Definite lengths only, as DER requires.
pub fn split_tlv(input: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((whole, &whole[header..], &input[end..]))
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn split_tlv_walks_a_sequence_and_refuses_truncation() {
        let inner = [tlv(0x02, &[5]), tlv(0x04, &[0u8; 200])].concat();
        let seq = tlv(0x30, &inner);
        let (whole, content, rest) = split_tlv(&seq).unwrap();
        assert_eq!(whole, seq.as_slice());
        assert!(rest.is_empty());
        let (int, _, after) = split_tlv(content).unwrap();
        assert_eq!(int, [0x02, 1, 5]);
        let (_, octets, end) = split_tlv(after).unwrap();
        assert_eq!(octets.len(), 200);
        assert!(end.is_empty());
        assert!(split_tlv(&seq[..seq.len() - 1]).is_none());
        assert!(split_tlv(&[0x30]).is_none());
    }
}
