//! Certificate profiles and the subject each one allows.
//!
//! Subject fields come from the request, checked here, never copied from a CSR. Vietnamese
//! names are normalized to NFC so they round-trip byte for byte.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::PkiError;

/// OID of UID (RFC 4519 userid), which carries `CCCD:<id>` and `MST:<tax code>`.
pub const OID_UID: &str = "0.9.2342.19200300.100.1.1";
/// OID of title (X.520).
pub const OID_TITLE: &str = "2.5.4.12";
/// id-kp-documentSigning (RFC 9336).
pub const OID_EKU_DOCUMENT_SIGNING: &str = "1.3.6.1.5.5.7.3.36";
/// id-kp-emailProtection.
pub const OID_EKU_EMAIL_PROTECTION: &str = "1.3.6.1.5.5.7.3.4";

/// RFC 5280 upper bounds (characters).
const UB_NAME: usize = 64;
const UB_LOCALITY: usize = 128;
const UB_EMAIL: usize = 255;

/// The profiles kyso issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A citizen's free personal certificate, from the public CA.
    Citizen,
    /// An official's personal certificate, from the government CA.
    Personal,
    /// An organization's "seal" certificate, from the government CA.
    Organization,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        match s {
            "citizen" => Ok(Self::Citizen),
            "personal" => Ok(Self::Personal),
            "organization" => Ok(Self::Organization),
            other => Err(PkiError::UnknownProfile(other.chars().take(40).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Citizen => "citizen",
            Self::Personal => "personal",
            Self::Organization => "organization",
        }
    }

    /// The issuing CA's name.
    pub fn ca(self) -> &'static str {
        match self {
            Self::Citizen => "public",
            Self::Personal | Self::Organization => "government",
        }
    }

    pub fn default_validity_days(self) -> u32 {
        730
    }

    pub fn max_validity_days(self) -> u32 {
        // 3 years, counting one leap day.
        3 * 365 + 1
    }
}

/// Certificate-policy OIDs, one per profile and one for the CA certificates.
///
/// The defaults are kyso's own, under the UUID arc 2.25 (documented in SECURITY.md). A
/// deployment under a national PKI sets the OIDs its policy authority assigned (`[policies]` in
/// kyso.toml). Note that 2.25 arcs are 128-bit numbers: RFC 5280 only obliges relying parties to
/// handle arcs up to 2^28, and some parsers (pkilint's, Botan, older pyca/cryptography) refuse
/// larger ones.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyOids {
    pub citizen: String,
    pub personal: String,
    pub organization: String,
    pub ca: String,
    /// The time-stamping policy named in every timestamp token (RFC 3161 TSTInfo.policy).
    pub tsa: String,
}

impl Default for PolicyOids {
    fn default() -> Self {
        Self {
            citizen: "2.25.40454352581029703767006245071585818794".into(),
            personal: "2.25.79834658804300509179482413207471545093".into(),
            organization: "2.25.172426744224457858278456620505744411802".into(),
            ca: "2.25.81471425017140460183805157865053886556".into(),
            tsa: "2.25.35703760518828628716224773812821125917".into(),
        }
    }
}

impl PolicyOids {
    pub fn for_profile(&self, p: Profile) -> &str {
        match p {
            Profile::Citizen => &self.citizen,
            Profile::Personal => &self.personal,
            Profile::Organization => &self.organization,
        }
    }

    /// Each OID must be dotted decimal with a first arc of 0-2 and arcs of at most 128 bits.
    pub fn check(&self) -> Result<(), String> {
        for (name, oid) in [
            ("citizen", &self.citizen),
            ("personal", &self.personal),
            ("organization", &self.organization),
            ("ca", &self.ca),
        ] {
            let arcs: Vec<&str> = oid.split('.').collect();
            let ok = arcs.len() >= 2
                && arcs.iter().all(|a| {
                    !a.is_empty()
                        && a.len() <= 39
                        && a.bytes().all(|b| b.is_ascii_digit())
                        && a.parse::<u128>().is_ok()
                })
                && matches!(arcs[0], "0" | "1" | "2");
            if !ok {
                return Err(format!("policies.{name}: `{oid}` is not a dotted OID"));
            }
        }
        Ok(())
    }
}

/// Subject fields as a requester sends them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRequest {
    pub common_name: String,
    #[serde(default)]
    pub citizen_id: Option<String>,
    #[serde(default)]
    pub tax_code: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub organizational_unit: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A subject checked against its profile. Can only be built by [`ValidatedSubject::check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidatedSubject {
    pub common_name: String,
    pub citizen_id: Option<String>,
    pub tax_code: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub title: Option<String>,
    pub locality: Option<String>,
    pub province: Option<String>,
    pub email: Option<String>,
}

/// One attribute of the subject DN, in encoding order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnAttribute {
    pub oid: &'static str,
    pub value: String,
    /// PrintableString (country) rather than UTF8String.
    pub printable: bool,
}

fn text(field: &'static str, value: &str, max: usize) -> Result<String, PkiError> {
    let v: String = value.trim().nfc().collect();
    if v.is_empty() {
        return Err(PkiError::InvalidSubject {
            field,
            reason: "must not be empty".into(),
        });
    }
    let n = v.chars().count();
    if n > max {
        return Err(PkiError::InvalidSubject {
            field,
            reason: format!("{n} characters, at most {max} allowed"),
        });
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(PkiError::InvalidSubject {
            field,
            reason: "contains control characters".into(),
        });
    }
    Ok(v)
}

fn opt_text(
    field: &'static str,
    v: &Option<String>,
    max: usize,
) -> Result<Option<String>, PkiError> {
    v.as_deref().map(|s| text(field, s, max)).transpose()
}

/// CCCD (căn cước công dân): exactly 12 ASCII digits.
pub fn check_citizen_id(v: &str) -> Result<String, PkiError> {
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_string())
    } else {
        Err(PkiError::InvalidSubject {
            field: "citizen_id",
            reason: "a CCCD number is exactly 12 digits".into(),
        })
    }
}

/// Mã số thuế: 10 digits, or 10 digits, a dash and 3 digits (a branch).
pub fn check_tax_code(v: &str) -> Result<String, PkiError> {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(|c| c.is_ascii_digit());
    let ok = (b.len() == 10 && digits(b))
        || (b.len() == 14 && digits(&b[..10]) && b[10] == b'-' && digits(&b[11..]));
    if ok {
        Ok(v.to_string())
    } else {
        Err(PkiError::InvalidSubject {
            field: "tax_code",
            reason: "a tax code is 10 digits, or 10 digits, '-' and 3 digits".into(),
        })
    }
}

fn check_email(v: &str) -> Result<String, PkiError> {
    let v = v.trim();
    let bad = |reason: &str| PkiError::InvalidSubject {
        field: "email",
        reason: reason.into(),
    };
    if v.len() > UB_EMAIL {
        return Err(bad("too long"));
    }
    if !v.is_ascii()
        || v.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad("must be ASCII without spaces"));
    }
    match v.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') =>
        {
            Ok(v.to_string())
        }
        _ => Err(bad("not an e-mail address")),
    }
}

fn forbid(profile: Profile, field: &'static str, v: &Option<String>) -> Result<(), PkiError> {
    match v {
        Some(_) => Err(PkiError::InvalidSubject {
            field,
            reason: format!("not allowed in the {} profile", profile.as_str()),
        }),
        None => Ok(()),
    }
}

fn require<T>(field: &'static str, v: Option<T>, profile: Profile) -> Result<T, PkiError> {
    v.ok_or_else(|| PkiError::InvalidSubject {
        field,
        reason: format!("required by the {} profile", profile.as_str()),
    })
}

impl ValidatedSubject {
    /// Checks a requested subject against a profile.
    pub fn check(profile: Profile, req: &SubjectRequest) -> Result<Self, PkiError> {
        let s = Self {
            common_name: text("common_name", &req.common_name, UB_NAME)?,
            citizen_id: req
                .citizen_id
                .as_deref()
                .map(check_citizen_id)
                .transpose()?,
            tax_code: req.tax_code.as_deref().map(check_tax_code).transpose()?,
            organization: opt_text("organization", &req.organization, UB_NAME)?,
            organizational_unit: opt_text(
                "organizational_unit",
                &req.organizational_unit,
                UB_NAME,
            )?,
            title: opt_text("title", &req.title, UB_NAME)?,
            locality: opt_text("locality", &req.locality, UB_LOCALITY)?,
            province: opt_text("province", &req.province, UB_LOCALITY)?,
            email: req.email.as_deref().map(check_email).transpose()?,
        };
        match profile {
            Profile::Citizen => {
                require("citizen_id", s.citizen_id.as_ref(), profile)?;
                forbid(profile, "tax_code", &s.tax_code)?;
                forbid(profile, "organization", &s.organization)?;
                forbid(profile, "organizational_unit", &s.organizational_unit)?;
                forbid(profile, "title", &s.title)?;
            }
            Profile::Personal => {
                require("citizen_id", s.citizen_id.as_ref(), profile)?;
                forbid(profile, "tax_code", &s.tax_code)?;
            }
            Profile::Organization => {
                forbid(profile, "citizen_id", &s.citizen_id)?;
                forbid(profile, "title", &s.title)?;
            }
        }
        Ok(s)
    }

    /// The subject DN in encoding order (most general first: C, ST, L, O, OU, title, UID, CN).
    pub fn dn(&self) -> Vec<DnAttribute> {
        let mut out = vec![DnAttribute {
            oid: "2.5.4.6",
            value: "VN".into(),
            printable: true,
        }];
        let mut push = |oid: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push(DnAttribute {
                    oid,
                    value: v.clone(),
                    printable: false,
                });
            }
        };
        push("2.5.4.8", &self.province);
        push("2.5.4.7", &self.locality);
        push("2.5.4.10", &self.organization);
        push("2.5.4.11", &self.organizational_unit);
        push(OID_TITLE, &self.title);
        push(
            OID_UID,
            &self.citizen_id.as_ref().map(|c| format!("CCCD:{c}")),
        );
        push(OID_UID, &self.tax_code.as_ref().map(|t| format!("MST:{t}")));
        out.push(DnAttribute {
            oid: "2.5.4.3",
            value: self.common_name.clone(),
            printable: false,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn citizen(cn: &str, id: &str) -> SubjectRequest {
        SubjectRequest {
            common_name: cn.into(),
            citizen_id: Some(id.into()),
            ..Default::default()
        }
    }

    #[test]
    fn vietnamese_names_are_normalized_to_nfc() {
        // "Nguyễn" with a combining circumflex + tilde (NFD) becomes the precomposed form.
        let nfd = "Nguye\u{302}\u{303}n Va\u{306}n A";
        let s = ValidatedSubject::check(Profile::Citizen, &citizen(nfd, "001099012345")).unwrap();
        assert_eq!(s.common_name, "Nguyễn Văn A");
        assert_ne!(s.common_name.as_bytes(), nfd.as_bytes());
    }

    #[test]
    fn citizen_id_must_be_twelve_digits() {
        for bad in [
            "00109901234",
            "0010990123456",
            "00109901234a",
            "００１０９９０１２３４５",
        ] {
            let e = ValidatedSubject::check(Profile::Citizen, &citizen("A", bad)).unwrap_err();
            assert!(
                matches!(
                    e,
                    PkiError::InvalidSubject {
                        field: "citizen_id",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn tax_code_forms() {
        assert!(check_tax_code("0101234567").is_ok());
        assert!(check_tax_code("0101234567-001").is_ok());
        for bad in [
            "010123456",
            "0101234567-01",
            "0101234567_001",
            "01012345678",
        ] {
            assert!(check_tax_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profiles_forbid_and_require_fields() {
        let mut r = citizen("A", "001099012345");
        r.organization = Some("Sở Nội vụ".into());
        assert!(ValidatedSubject::check(Profile::Citizen, &r).is_err());
        assert!(ValidatedSubject::check(Profile::Personal, &r).is_ok());
        assert!(ValidatedSubject::check(Profile::Organization, &r).is_err());
        let org = SubjectRequest {
            common_name: "UBND tỉnh Hà Giang".into(),
            tax_code: Some("0100109106".into()),
            ..Default::default()
        };
        let s = ValidatedSubject::check(Profile::Organization, &org).unwrap();
        assert!(s.dn().iter().any(|a| a.value == "MST:0100109106"));
        let no_id = SubjectRequest {
            common_name: "A".into(),
            ..Default::default()
        };
        assert!(ValidatedSubject::check(Profile::Personal, &no_id).is_err());
    }

    #[test]
    fn lengths_follow_rfc5280_bounds() {
        let long = "ă".repeat(65);
        assert!(
            ValidatedSubject::check(Profile::Citizen, &citizen(&long, "001099012345")).is_err()
        );
        let ok = "ă".repeat(64);
        assert!(ValidatedSubject::check(Profile::Citizen, &citizen(&ok, "001099012345")).is_ok());
        assert!(ValidatedSubject::check(Profile::Citizen, &citizen("  ", "001099012345")).is_err());
        assert!(
            ValidatedSubject::check(Profile::Citizen, &citizen("a\u{7}b", "001099012345")).is_err()
        );
    }

    #[test]
    fn unknown_profile_is_rejected() {
        assert!(matches!(
            Profile::parse("root"),
            Err(PkiError::UnknownProfile(_))
        ));
    }
}
