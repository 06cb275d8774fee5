//! Content negotiation: which representation the client accepts (`Accept`) and which it
//! sent (`Content-Type`).

use k1s_apimachinery::Status;

/// One media range of an Accept header, with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `application/json`.
    pub essence: String,
    /// Parameters, lowercased names.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype;k=v;…`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                ))
            })
            .collect();
        Some(Self { essence, params })
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json_compatible(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// Parses an Accept header into its media ranges, in the client's order (q-values are
/// honoured by moving q=0 entries out).
pub fn parse_accept(header: Option<&str>) -> Vec<MediaType> {
    let Some(h) = header.filter(|h| !h.trim().is_empty()) else {
        return vec![MediaType {
            essence: "application/json".into(),
            params: vec![],
        }];
    };
    h.split(',')
        .filter_map(MediaType::parse)
        .filter(|m| m.param("q") != Some("0"))
        .collect()
}

/// How a resource response is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Plain JSON.
    Json,
    /// YAML.
    Yaml,
    /// A meta.k8s.io/v1 Table.
    Table,
    /// meta.k8s.io/v1 PartialObjectMetadata (or its list).
    PartialMetadata,
}

/// Chooses the representation of a resource response.
pub fn resource_output(accept: &[MediaType]) -> Result<Output, Status> {
    for m in accept {
        let as_kind = m.param("as");
        match (m.essence.as_str(), as_kind) {
            ("application/json", Some("Table"))
                if m.param("g") == Some("meta.k8s.io")
                    && m.param("v").is_none_or(|v| v == "v1" || v == "v1beta1") =>
            {
                return Ok(Output::Table);
            }
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if m.param("g") == Some("meta.k8s.io") =>
            {
                return Ok(Output::PartialMetadata);
            }
            (_, Some(_)) => {}
            ("application/yaml", None) => return Ok(Output::Yaml),
            _ if m.json_compatible() => return Ok(Output::Json),
            _ => {}
        }
    }
    Err(not_acceptable())
}

/// Upstream's 406 text.
pub fn not_acceptable() -> Status {
    Status::not_acceptable(&[
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ])
}

/// What a request body is, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// application/json.
    Json,
    /// application/yaml.
    Yaml,
    /// application/json-patch+json.
    JsonPatch,
    /// application/merge-patch+json.
    MergePatch,
    /// application/strategic-merge-patch+json.
    StrategicMergePatch,
    /// application/apply-patch+yaml (server-side apply).
    ApplyPatch,
    /// application/vnd.kubernetes.protobuf (objects of built-in kinds only).
    Protobuf,
}

/// Parses a Content-Type for a body. No header (or an empty one) means JSON, as upstream
/// defaults to the first serializer; one without a media type (`;;;`) is unsupported.
pub fn body_type(header: Option<&str>) -> Result<BodyType, String> {
    let essence = match header.filter(|h| !h.trim().is_empty()) {
        None => "application/json".to_string(),
        Some(h) => MediaType::parse(h).ok_or_else(|| h.to_string())?.essence,
    };
    Ok(match essence.as_str() {
        "application/json" => BodyType::Json,
        "application/yaml" => BodyType::Yaml,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyPatch,
        crate::schema::protobuf::MEDIA_TYPE => BodyType::Protobuf,
        other => return Err(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_accept_header_picks_table() {
        let a = parse_accept(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        ));
        assert_eq!(resource_output(&a).unwrap(), Output::Table);
    }

    #[test]
    fn protobuf_first_falls_back_to_json_and_nothing_acceptable_is_406() {
        let a = parse_accept(Some("application/vnd.kubernetes.protobuf, */*"));
        assert_eq!(resource_output(&a).unwrap(), Output::Json);
        let a = parse_accept(Some("application/vnd.kubernetes.protobuf"));
        assert_eq!(resource_output(&a).unwrap_err().code(), 406);
        assert_eq!(resource_output(&parse_accept(None)).unwrap(), Output::Json);
    }

    #[test]
    fn patch_content_types_are_recognised() {
        assert_eq!(
            body_type(Some("application/strategic-merge-patch+json")).unwrap(),
            BodyType::StrategicMergePatch
        );
        assert_eq!(
            body_type(Some("application/apply-patch+yaml; charset=utf-8")).unwrap(),
            BodyType::ApplyPatch
        );
        assert!(body_type(Some("text/plain")).is_err());
        assert_eq!(body_type(None).unwrap(), BodyType::Json);
        assert_eq!(body_type(Some(" ")).unwrap(), BodyType::Json);
        // A Content-Type without a media type was read as JSON and created objects.
        assert!(body_type(Some(";;;")).is_err());
        assert!(body_type(Some("; charset=utf-8")).is_err());
        assert_eq!(
            body_type(Some("application/vnd.kubernetes.protobuf")).unwrap(),
            BodyType::Protobuf
        );
    }
}
