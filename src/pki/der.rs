//! A few DER building blocks for the extensions rcgen does not build itself (certificate
//! policies with 2.25 UUID arcs, authority information access).

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

pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// Encodes a dotted OID, arcs up to 128 bits (2.25 UUID OIDs need that).
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u128> = dotted.split('.').map(|a| a.parse().unwrap_or(0)).collect();
    let mut body = Vec::new();
    let first = arcs.first().copied().unwrap_or(0) * 40 + arcs.get(1).copied().unwrap_or(0);
    push_base128(&mut body, first);
    for arc in arcs.iter().skip(2) {
        push_base128(&mut body, *arc);
    }
    tlv(0x06, &body)
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
    fn long_lengths_use_the_long_form() {
        let v = tlv(0x04, &[0u8; 300]);
        assert_eq!(&v[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
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
