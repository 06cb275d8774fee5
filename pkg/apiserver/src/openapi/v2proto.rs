//! Swagger 2.0 JSON to gnostic `openapi.v2.Document` protobuf bytes.
//!
//! kubectl asks `/openapi/v2` for
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and will not
//! take JSON there. Upstream servers parse their JSON document with gnostic
//! (`openapiv2.ParseDocument`) and marshal the resulting `openapi.v2.Document`.
//! This module produces the same message directly from a `serde_json::Value`.
//!
//! The message structs below mirror `openapiv2/OpenAPIv2.proto` from
//! gnostic-models field for field (numbers and wire types are what matter;
//! Rust field names only differ where the proto name is a Rust keyword).
//! A few mapping rules follow gnostic's parser:
//!
//! * vendor extensions (`x-*` keys) become `NamedAny { name, value: Any { yaml } }`
//!   where `yaml` is the YAML text of the JSON value, e.g. `"merge"` gives
//!   `merge\n` and a list of GVK objects gives `- group: apps\n  kind: ...`;
//!   `Any.value` (a `google.protobuf.Any`) stays unset, as gnostic leaves it
//!   when no extension handler is registered;
//! * `default`, `example`, the items of `enum` and response `examples` values
//!   are `Any` in the same way;
//! * a parameter with `$ref` is a `JsonReference`, otherwise `in` selects
//!   `BodyParameter` or one of the four `NonBodyParameter` variants;
//! * a response (or response schema) with `$ref` is a `JsonReference`; a
//!   response schema of `type: file` using only file-schema keys is a
//!   `FileSchema`;
//! * `type` becomes `TypeItem` (a list), `items` becomes `ItemsItem` (a list),
//!   `additionalProperties` is either a schema or a boolean;
//! * keys that the proto has no place for (`nullable`, `anyOf`, a response
//!   key that is neither a status code, `default` nor `x-*`, ...) are dropped,
//!   as gnostic drops them; a value of the wrong JSON type for its field, an
//!   unknown parameter `in` or an unknown security scheme is an error.
//!
//! Where this deliberately differs from gnostic: `items` given as an array
//! becomes several schemas (gnostic rejects it and keeps one empty schema),
//! and strings that YAML 1.1 reads as something else (`no`, `y`, `on`) are
//! quoted in `Any.yaml`, where gnostic's yaml.v3 leaves them plain and
//! kube-openapi's yaml.v2 reader then turns them into booleans.
//!
//! Ordered maps (definitions, properties, paths, extensions, ...) keep the
//! order of the input object, so build the value with `preserve_order`.

use std::fmt::Write as _;

use prost::Message as _;
use serde_json::{Map, Number, Value};

/// Why a Swagger document could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum V2ProtoError {
    /// A value has a JSON type that the proto field cannot hold.
    #[error("{path}: expected {expected}")]
    InvalidType {
        /// JSON-pointer-like location of the value (`/` is the document).
        path: String,
        /// What the field needs.
        expected: &'static str,
    },
    /// A value has the right JSON type but is not one the schema allows.
    #[error("{path}: {message}")]
    InvalidValue {
        /// JSON-pointer-like location of the value (`/` is the document).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Encodes a Swagger 2.0 document as the protobuf bytes of gnostic's
/// `openapi.v2.Document`, as served at `/openapi/v2` for
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
pub fn encode_document(swagger: &Value) -> std::result::Result<Vec<u8>, V2ProtoError> {
    let doc = document(swagger, &Path::Root)?;
    Ok(doc.encode_to_vec())
}

// ---------------------------------------------------------------------------
// Messages of openapi.v2 (gnostic-models openapiv2/OpenAPIv2.proto).
// ---------------------------------------------------------------------------

/// `openapi.v2.AdditionalPropertiesItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AdditionalPropertiesItem {
    #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
    pub oneof: Option<additional_properties_item::Oneof>,
}

/// Oneof of [`AdditionalPropertiesItem`].
pub(crate) mod additional_properties_item {
    /// `oneof oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Schema(Box<super::Schema>),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }
}

/// `openapi.v2.Any`: `value` is a `google.protobuf.Any`, which gnostic only
/// fills through extension handlers; `yaml` is the YAML text of the value.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Any {
    #[prost(message, optional, tag = "1")]
    pub value: Option<ProtobufAny>,
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtobufAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `openapi.v2.ApiKeySecurity`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ApiKeySecurity {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub in_: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, repeated, tag = "5")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.BasicAuthenticationSecurity`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BasicAuthenticationSecurity {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub in_: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Contact`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Contact {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(string, tag = "3")]
    pub email: String,
    #[prost(message, repeated, tag = "4")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Definitions`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(string, tag = "3")]
    pub host: String,
    #[prost(string, tag = "4")]
    pub base_path: String,
    #[prost(string, repeated, tag = "5")]
    pub schemes: Vec<String>,
    #[prost(string, repeated, tag = "6")]
    pub consumes: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub produces: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    #[prost(message, optional, tag = "10")]
    pub parameters: Option<ParameterDefinitions>,
    #[prost(message, optional, tag = "11")]
    pub responses: Option<ResponseDefinitions>,
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    #[prost(message, optional, tag = "13")]
    pub security_definitions: Option<SecurityDefinitions>,
    #[prost(message, repeated, tag = "14")]
    pub tags: Vec<Tag>,
    #[prost(message, optional, tag = "15")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, repeated, tag = "16")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Examples`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Examples {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedAny>,
}

/// `openapi.v2.ExternalDocs`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExternalDocs {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.FileSchema`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct FileSchema {
    #[prost(string, tag = "1")]
    pub format: String,
    #[prost(string, tag = "2")]
    pub title: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(message, optional, tag = "4")]
    pub default: Option<Any>,
    #[prost(string, repeated, tag = "5")]
    pub required: Vec<String>,
    #[prost(string, tag = "6")]
    pub type_: String,
    #[prost(bool, tag = "7")]
    pub read_only: bool,
    #[prost(message, optional, tag = "8")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, optional, tag = "9")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.FormDataParameterSubSchema`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct FormDataParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub in_: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(bool, tag = "5")]
    pub allow_empty_value: bool,
    #[prost(string, tag = "6")]
    pub type_: String,
    #[prost(string, tag = "7")]
    pub format: String,
    #[prost(message, optional, tag = "8")]
    pub items: Option<PrimitivesItems>,
    #[prost(string, tag = "9")]
    pub collection_format: String,
    #[prost(message, optional, tag = "10")]
    pub default: Option<Any>,
    #[prost(double, tag = "11")]
    pub maximum: f64,
    #[prost(bool, tag = "12")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "13")]
    pub minimum: f64,
    #[prost(bool, tag = "14")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "15")]
    pub max_length: i64,
    #[prost(int64, tag = "16")]
    pub min_length: i64,
    #[prost(string, tag = "17")]
    pub pattern: String,
    #[prost(int64, tag = "18")]
    pub max_items: i64,
    #[prost(int64, tag = "19")]
    pub min_items: i64,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "21")]
    pub enum_: Vec<Any>,
    #[prost(double, tag = "22")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "23")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Header`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Header {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(message, optional, tag = "3")]
    pub items: Option<PrimitivesItems>,
    #[prost(string, tag = "4")]
    pub collection_format: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub maximum: f64,
    #[prost(bool, tag = "7")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "8")]
    pub minimum: f64,
    #[prost(bool, tag = "9")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "10")]
    pub max_length: i64,
    #[prost(int64, tag = "11")]
    pub min_length: i64,
    #[prost(string, tag = "12")]
    pub pattern: String,
    #[prost(int64, tag = "13")]
    pub max_items: i64,
    #[prost(int64, tag = "14")]
    pub min_items: i64,
    #[prost(bool, tag = "15")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "16")]
    pub enum_: Vec<Any>,
    #[prost(double, tag = "17")]
    pub multiple_of: f64,
    #[prost(string, tag = "18")]
    pub description: String,
    #[prost(message, repeated, tag = "19")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.HeaderParameterSubSchema`; the same layout (after `in`,
/// `description` and `name`) is shared by `PathParameterSubSchema`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HeaderParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub in_: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub type_: String,
    #[prost(string, tag = "6")]
    pub format: String,
    #[prost(message, optional, tag = "7")]
    pub items: Option<PrimitivesItems>,
    #[prost(string, tag = "8")]
    pub collection_format: String,
    #[prost(message, optional, tag = "9")]
    pub default: Option<Any>,
    #[prost(double, tag = "10")]
    pub maximum: f64,
    #[prost(bool, tag = "11")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "12")]
    pub minimum: f64,
    #[prost(bool, tag = "13")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "14")]
    pub max_length: i64,
    #[prost(int64, tag = "15")]
    pub min_length: i64,
    #[prost(string, tag = "16")]
    pub pattern: String,
    #[prost(int64, tag = "17")]
    pub max_items: i64,
    #[prost(int64, tag = "18")]
    pub min_items: i64,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "20")]
    pub enum_: Vec<Any>,
    #[prost(double, tag = "21")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "22")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.PathParameterSubSchema` has exactly the field numbers and
/// types of `HeaderParameterSubSchema`.
pub(crate) type PathParameterSubSchema = HeaderParameterSubSchema;

/// `openapi.v2.Headers`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Headers {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedHeader>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub terms_of_service: String,
    #[prost(message, optional, tag = "5")]
    pub contact: Option<Contact>,
    #[prost(message, optional, tag = "6")]
    pub license: Option<License>,
    #[prost(message, repeated, tag = "7")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.JsonReference`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct JsonReference {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `openapi.v2.License`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct License {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub url: String,
    #[prost(message, repeated, tag = "3")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.NamedAny`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.NamedHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedHeader {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Header>,
}

/// `openapi.v2.NamedParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedParameter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Parameter>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.NamedResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedResponse {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Response>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.NamedSecurityDefinitionsItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedSecurityDefinitionsItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<SecurityDefinitionsItem>,
}

/// `openapi.v2.NamedString`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedString {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `openapi.v2.NamedStringArray`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedStringArray {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<StringArray>,
}

/// `openapi.v2.NonBodyParameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NonBodyParameter {
    #[prost(oneof = "non_body_parameter::Oneof", tags = "1, 2, 3, 4")]
    pub oneof: Option<non_body_parameter::Oneof>,
}

/// Oneof of [`NonBodyParameter`].
pub(crate) mod non_body_parameter {
    /// `oneof oneof`.
    // Variant names follow the proto oneof fields.
    #[allow(clippy::enum_variant_names)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        HeaderParameterSubSchema(Box<super::HeaderParameterSubSchema>),
        #[prost(message, tag = "2")]
        FormDataParameterSubSchema(Box<super::FormDataParameterSubSchema>),
        #[prost(message, tag = "3")]
        QueryParameterSubSchema(Box<super::QueryParameterSubSchema>),
        #[prost(message, tag = "4")]
        PathParameterSubSchema(Box<super::PathParameterSubSchema>),
    }
}

/// `openapi.v2.Oauth2AccessCodeSecurity`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Oauth2AccessCodeSecurity {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub flow: String,
    #[prost(message, optional, tag = "3")]
    pub scopes: Option<Oauth2Scopes>,
    #[prost(string, tag = "4")]
    pub authorization_url: String,
    #[prost(string, tag = "5")]
    pub token_url: String,
    #[prost(string, tag = "6")]
    pub description: String,
    #[prost(message, repeated, tag = "7")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Oauth2ApplicationSecurity`; `Oauth2PasswordSecurity` has the
/// same field numbers and types.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Oauth2ApplicationSecurity {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub flow: String,
    #[prost(message, optional, tag = "3")]
    pub scopes: Option<Oauth2Scopes>,
    #[prost(string, tag = "4")]
    pub token_url: String,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Oauth2PasswordSecurity`.
pub(crate) type Oauth2PasswordSecurity = Oauth2ApplicationSecurity;

/// `openapi.v2.Oauth2ImplicitSecurity`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Oauth2ImplicitSecurity {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub flow: String,
    #[prost(message, optional, tag = "3")]
    pub scopes: Option<Oauth2Scopes>,
    #[prost(string, tag = "4")]
    pub authorization_url: String,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Oauth2Scopes`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Oauth2Scopes {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedString>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "2")]
    pub summary: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(message, optional, tag = "4")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(bool, tag = "11")]
    pub deprecated: bool,
    #[prost(message, repeated, tag = "12")]
    pub security: Vec<SecurityRequirement>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Parameter`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Parameter {
    #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
    pub oneof: Option<parameter::Oneof>,
}

/// Oneof of [`Parameter`].
pub(crate) mod parameter {
    /// `oneof oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        BodyParameter(Box<super::BodyParameter>),
        #[prost(message, tag = "2")]
        NonBodyParameter(super::NonBodyParameter),
    }
}

/// `openapi.v2.ParameterDefinitions`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ParameterDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedParameter>,
}

/// `openapi.v2.ParametersItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ParametersItem {
    #[prost(oneof = "parameters_item::Oneof", tags = "1, 2")]
    pub oneof: Option<parameters_item::Oneof>,
}

/// Oneof of [`ParametersItem`].
pub(crate) mod parameters_item {
    /// `oneof oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Parameter(super::Parameter),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PathItem {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "6")]
    pub options: Option<Operation>,
    #[prost(message, optional, tag = "7")]
    pub head: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Paths {
    #[prost(message, repeated, tag = "1")]
    pub vendor_extension: Vec<NamedAny>,
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.PrimitivesItems`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PrimitivesItems {
    #[prost(string, tag = "1")]
    pub type_: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(message, optional, boxed, tag = "3")]
    pub items: Option<Box<PrimitivesItems>>,
    #[prost(string, tag = "4")]
    pub collection_format: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub maximum: f64,
    #[prost(bool, tag = "7")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "8")]
    pub minimum: f64,
    #[prost(bool, tag = "9")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "10")]
    pub max_length: i64,
    #[prost(int64, tag = "11")]
    pub min_length: i64,
    #[prost(string, tag = "12")]
    pub pattern: String,
    #[prost(int64, tag = "13")]
    pub max_items: i64,
    #[prost(int64, tag = "14")]
    pub min_items: i64,
    #[prost(bool, tag = "15")]
    pub unique_items: bool,
    #[prost(message, repeated, tag = "16")]
    pub enum_: Vec<Any>,
    #[prost(double, tag = "17")]
    pub multiple_of: f64,
    #[prost(message, repeated, tag = "18")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.QueryParameterSubSchema`; `FormDataParameterSubSchema` has
/// the same field numbers and types.
pub(crate) type QueryParameterSubSchema = FormDataParameterSubSchema;

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
    #[prost(message, optional, tag = "3")]
    pub headers: Option<Headers>,
    #[prost(message, optional, tag = "4")]
    pub examples: Option<Examples>,
    #[prost(message, repeated, tag = "5")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ResponseDefinitions`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ResponseDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedResponse>,
}

/// `openapi.v2.ResponseValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ResponseValue {
    #[prost(oneof = "response_value::Oneof", tags = "1, 2")]
    pub oneof: Option<response_value::Oneof>,
}

/// Oneof of [`ResponseValue`].
pub(crate) mod response_value {
    /// `oneof oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Response(Box<super::Response>),
        #[prost(message, tag = "2")]
        JsonReference(super::JsonReference),
    }
}

/// `openapi.v2.Responses`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
    #[prost(message, repeated, tag = "2")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Schema`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Schema {
    #[prost(string, tag = "1")]
    pub xref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub multiple_of: f64,
    #[prost(double, tag = "7")]
    pub maximum: f64,
    #[prost(bool, tag = "8")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "9")]
    pub minimum: f64,
    #[prost(bool, tag = "10")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "11")]
    pub max_length: i64,
    #[prost(int64, tag = "12")]
    pub min_length: i64,
    #[prost(string, tag = "13")]
    pub pattern: String,
    #[prost(int64, tag = "14")]
    pub max_items: i64,
    #[prost(int64, tag = "15")]
    pub min_items: i64,
    #[prost(bool, tag = "16")]
    pub unique_items: bool,
    #[prost(int64, tag = "17")]
    pub max_properties: i64,
    #[prost(int64, tag = "18")]
    pub min_properties: i64,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub enum_: Vec<Any>,
    #[prost(message, optional, tag = "21")]
    pub additional_properties: Option<AdditionalPropertiesItem>,
    #[prost(message, optional, tag = "22")]
    pub type_: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(string, tag = "26")]
    pub discriminator: String,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, optional, tag = "28")]
    pub xml: Option<Xml>,
    #[prost(message, optional, tag = "29")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.SchemaItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SchemaItem {
    #[prost(oneof = "schema_item::Oneof", tags = "1, 2")]
    pub oneof: Option<schema_item::Oneof>,
}

/// Oneof of [`SchemaItem`].
pub(crate) mod schema_item {
    /// `oneof oneof`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Schema(Box<super::Schema>),
        #[prost(message, tag = "2")]
        FileSchema(Box<super::FileSchema>),
    }
}

/// `openapi.v2.SecurityDefinitions`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SecurityDefinitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSecurityDefinitionsItem>,
}

/// `openapi.v2.SecurityDefinitionsItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SecurityDefinitionsItem {
    #[prost(oneof = "security_definitions_item::Oneof", tags = "1, 2, 3, 4, 5, 6")]
    pub oneof: Option<security_definitions_item::Oneof>,
}

/// Oneof of [`SecurityDefinitionsItem`].
pub(crate) mod security_definitions_item {
    /// `oneof oneof`.
    // Variant names follow the proto oneof fields.
    #[allow(clippy::enum_variant_names)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        BasicAuthenticationSecurity(super::BasicAuthenticationSecurity),
        #[prost(message, tag = "2")]
        ApiKeySecurity(super::ApiKeySecurity),
        #[prost(message, tag = "3")]
        Oauth2ImplicitSecurity(super::Oauth2ImplicitSecurity),
        #[prost(message, tag = "4")]
        Oauth2PasswordSecurity(super::Oauth2PasswordSecurity),
        #[prost(message, tag = "5")]
        Oauth2ApplicationSecurity(super::Oauth2ApplicationSecurity),
        #[prost(message, tag = "6")]
        Oauth2AccessCodeSecurity(super::Oauth2AccessCodeSecurity),
    }
}

/// `openapi.v2.SecurityRequirement`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SecurityRequirement {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedStringArray>,
}

/// `openapi.v2.StringArray`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StringArray {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.Tag`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Tag {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(message, optional, tag = "3")]
    pub external_docs: Option<ExternalDocs>,
    #[prost(message, repeated, tag = "4")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.Xml`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Xml {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub prefix: String,
    #[prost(bool, tag = "4")]
    pub attribute: bool,
    #[prost(bool, tag = "5")]
    pub wrapped: bool,
    #[prost(message, repeated, tag = "6")]
    pub vendor_extension: Vec<NamedAny>,
}

// ---------------------------------------------------------------------------
// JSON -> message conversion.
// ---------------------------------------------------------------------------

/// Location of a value inside the document, rendered only for errors.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut parts = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                Path::Root => break,
                Path::Key(parent, key) => {
                    parts.push((*key).replace('~', "~0").replace('/', "~1"));
                    cur = parent;
                }
                Path::Index(parent, index) => {
                    parts.push(index.to_string());
                    cur = parent;
                }
            }
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn key<'a>(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    fn index(&self, index: usize) -> Path<'_> {
        Path::Index(self, index)
    }

    fn invalid_type(&self, expected: &'static str) -> V2ProtoError {
        V2ProtoError::InvalidType {
            path: self.render(),
            expected,
        }
    }

    fn invalid_value(&self, message: impl Into<String>) -> V2ProtoError {
        V2ProtoError::InvalidValue {
            path: self.render(),
            message: message.into(),
        }
    }
}

type Obj = Map<String, Value>;
type Result<T> = std::result::Result<T, V2ProtoError>;

/// A JSON object together with its location.
#[derive(Clone, Copy)]
struct Node<'a> {
    map: &'a Obj,
    path: &'a Path<'a>,
}

fn as_object<'a>(value: &'a Value, path: &'a Path<'a>) -> Result<Node<'a>> {
    match value {
        Value::Object(map) => Ok(Node { map, path }),
        _ => Err(path.invalid_type("an object")),
    }
}

impl<'a> Node<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn string(&self, key: &str) -> Result<String> {
        match self.map.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.path.key(key).invalid_type("a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool> {
        match self.map.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.path.key(key).invalid_type("a boolean")),
        }
    }

    fn double(&self, key: &str) -> Result<f64> {
        match self.map.get(key) {
            None => Ok(0.0),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| self.path.key(key).invalid_type("a number")),
            Some(_) => Err(self.path.key(key).invalid_type("a number")),
        }
    }

    fn int(&self, key: &str) -> Result<i64> {
        let bad = || self.path.key(key).invalid_type("an integer");
        match self.map.get(key) {
            None => Ok(0),
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Ok(i)
                } else if n.is_f64() {
                    let f = n.as_f64().ok_or_else(bad)?;
                    // Casting is exact here: integral and inside i64's range.
                    if f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
                        Ok(f as i64)
                    } else {
                        Err(bad())
                    }
                } else {
                    Err(bad())
                }
            }
            Some(_) => Err(bad()),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                let path = self.path.key(key);
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(path.index(i).invalid_type("a string")),
                    })
                    .collect()
            }
            Some(_) => Err(self.path.key(key).invalid_type("an array of strings")),
        }
    }

    fn any(&self, key: &str) -> Option<Any> {
        self.map.get(key).map(any)
    }

    fn anys(&self, key: &str) -> Result<Vec<Any>> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.iter().map(any).collect()),
            Some(_) => Err(self.path.key(key).invalid_type("an array")),
        }
    }

    /// Applies `f` to the object under `key`, when there is one.
    fn child<T>(&self, key: &str, f: impl FnOnce(Node<'_>) -> Result<T>) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => {
                let path = self.path.key(key);
                let node = as_object(value, &path)?;
                f(node).map(Some)
            }
        }
    }

    /// Applies `f` to every object in the array under `key`.
    fn children<T>(&self, key: &str, mut f: impl FnMut(Node<'_>) -> Result<T>) -> Result<Vec<T>> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                let path = self.path.key(key);
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = path.index(i);
                    out.push(f(as_object(item, &item_path)?)?);
                }
                Ok(out)
            }
            Some(_) => Err(self.path.key(key).invalid_type("an array of objects")),
        }
    }

    /// Applies `f` to every `(name, object)` entry of the object under `key`.
    fn entries<T>(
        &self,
        key: &str,
        mut f: impl FnMut(&str, Node<'_>) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        self.child(key, |map| {
            let mut out = Vec::with_capacity(map.map.len());
            for (name, value) in map.map {
                let path = map.path.key(name);
                out.push(f(name, as_object(value, &path)?)?);
            }
            Ok(out)
        })
    }

    fn vendor_extensions(&self) -> Vec<NamedAny> {
        self.map
            .iter()
            .filter(|(k, _)| k.starts_with("x-"))
            .map(|(k, v)| NamedAny {
                name: k.clone(),
                value: Some(any(v)),
            })
            .collect()
    }
}

fn any(value: &Value) -> Any {
    Any {
        value: None,
        yaml: to_yaml(value),
    }
}

fn document(value: &Value, path: &Path<'_>) -> Result<Document> {
    let n = as_object(value, path)?;
    Ok(Document {
        swagger: n.string("swagger")?,
        info: n.child("info", info)?,
        host: n.string("host")?,
        base_path: n.string("basePath")?,
        schemes: n.strings("schemes")?,
        consumes: n.strings("consumes")?,
        produces: n.strings("produces")?,
        paths: n.child("paths", paths)?,
        definitions: n
            .entries("definitions", named_schema)?
            .map(|additional_properties| Definitions {
                additional_properties,
            }),
        parameters: n
            .entries("parameters", |name, p| {
                Ok(NamedParameter {
                    name: name.to_owned(),
                    value: Some(parameter(p)?),
                })
            })?
            .map(|additional_properties| ParameterDefinitions {
                additional_properties,
            }),
        responses: n
            .entries("responses", |name, r| {
                Ok(NamedResponse {
                    name: name.to_owned(),
                    value: Some(response(r)?),
                })
            })?
            .map(|additional_properties| ResponseDefinitions {
                additional_properties,
            }),
        security: n.children("security", security_requirement)?,
        security_definitions: n
            .entries("securityDefinitions", |name, s| {
                Ok(NamedSecurityDefinitionsItem {
                    name: name.to_owned(),
                    value: Some(security_definition(s)?),
                })
            })?
            .map(|additional_properties| SecurityDefinitions {
                additional_properties,
            }),
        tags: n.children("tags", tag)?,
        external_docs: n.child("externalDocs", external_docs)?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn info(n: Node<'_>) -> Result<Info> {
    Ok(Info {
        title: n.string("title")?,
        version: n.string("version")?,
        description: n.string("description")?,
        terms_of_service: n.string("termsOfService")?,
        contact: n.child("contact", |c| {
            Ok(Contact {
                name: c.string("name")?,
                url: c.string("url")?,
                email: c.string("email")?,
                vendor_extension: c.vendor_extensions(),
            })
        })?,
        license: n.child("license", |l| {
            Ok(License {
                name: l.string("name")?,
                url: l.string("url")?,
                vendor_extension: l.vendor_extensions(),
            })
        })?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn external_docs(n: Node<'_>) -> Result<ExternalDocs> {
    Ok(ExternalDocs {
        description: n.string("description")?,
        url: n.string("url")?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn tag(n: Node<'_>) -> Result<Tag> {
    Ok(Tag {
        name: n.string("name")?,
        description: n.string("description")?,
        external_docs: n.child("externalDocs", external_docs)?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn paths(n: Node<'_>) -> Result<Paths> {
    let mut path = Vec::new();
    for (name, value) in n.map {
        if name.starts_with('/') {
            let item_path = n.path.key(name);
            let item = path_item(as_object(value, &item_path)?)?;
            path.push(NamedPathItem {
                name: name.clone(),
                value: Some(item),
            });
        }
    }
    Ok(Paths {
        vendor_extension: n.vendor_extensions(),
        path,
    })
}

fn path_item(n: Node<'_>) -> Result<PathItem> {
    Ok(PathItem {
        xref: n.string("$ref")?,
        get: n.child("get", operation)?,
        put: n.child("put", operation)?,
        post: n.child("post", operation)?,
        delete: n.child("delete", operation)?,
        options: n.child("options", operation)?,
        head: n.child("head", operation)?,
        patch: n.child("patch", operation)?,
        parameters: n.children("parameters", parameters_item)?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn operation(n: Node<'_>) -> Result<Operation> {
    Ok(Operation {
        tags: n.strings("tags")?,
        summary: n.string("summary")?,
        description: n.string("description")?,
        external_docs: n.child("externalDocs", external_docs)?,
        operation_id: n.string("operationId")?,
        produces: n.strings("produces")?,
        consumes: n.strings("consumes")?,
        parameters: n.children("parameters", parameters_item)?,
        responses: n.child("responses", responses)?,
        schemes: n.strings("schemes")?,
        deprecated: n.boolean("deprecated")?,
        security: n.children("security", security_requirement)?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn json_reference(n: Node<'_>) -> Result<JsonReference> {
    Ok(JsonReference {
        xref: n.string("$ref")?,
        description: n.string("description")?,
    })
}

fn parameters_item(n: Node<'_>) -> Result<ParametersItem> {
    let oneof = if n.get("$ref").is_some() {
        parameters_item::Oneof::JsonReference(json_reference(n)?)
    } else {
        parameters_item::Oneof::Parameter(parameter(n)?)
    };
    Ok(ParametersItem { oneof: Some(oneof) })
}

fn parameter(n: Node<'_>) -> Result<Parameter> {
    use non_body_parameter::Oneof as NonBody;
    let location = n.string("in")?;
    let oneof = match location.as_str() {
        "body" => parameter::Oneof::BodyParameter(Box::new(BodyParameter {
            description: n.string("description")?,
            name: n.string("name")?,
            in_: location,
            required: n.boolean("required")?,
            schema: n.child("schema", schema)?,
            vendor_extension: n.vendor_extensions(),
        })),
        "header" | "path" => {
            let sub = Box::new(header_or_path_parameter(n, location)?);
            let non_body = if sub.in_ == "header" {
                NonBody::HeaderParameterSubSchema(sub)
            } else {
                NonBody::PathParameterSubSchema(sub)
            };
            parameter::Oneof::NonBodyParameter(NonBodyParameter {
                oneof: Some(non_body),
            })
        }
        "query" | "formData" => {
            let sub = Box::new(query_or_form_parameter(n, location)?);
            let non_body = if sub.in_ == "query" {
                NonBody::QueryParameterSubSchema(sub)
            } else {
                NonBody::FormDataParameterSubSchema(sub)
            };
            parameter::Oneof::NonBodyParameter(NonBodyParameter {
                oneof: Some(non_body),
            })
        }
        "" => {
            return Err(n
                .path
                .invalid_value("parameter has neither \"in\" nor \"$ref\""));
        }
        other => {
            return Err(n
                .path
                .key("in")
                .invalid_value(format!("unknown parameter location {other:?}")));
        }
    };
    Ok(Parameter { oneof: Some(oneof) })
}

fn header_or_path_parameter(n: Node<'_>, location: String) -> Result<HeaderParameterSubSchema> {
    Ok(HeaderParameterSubSchema {
        required: n.boolean("required")?,
        in_: location,
        description: n.string("description")?,
        name: n.string("name")?,
        type_: n.string("type")?,
        format: n.string("format")?,
        items: n.child("items", primitives_items)?,
        collection_format: n.string("collectionFormat")?,
        default: n.any("default"),
        maximum: n.double("maximum")?,
        exclusive_maximum: n.boolean("exclusiveMaximum")?,
        minimum: n.double("minimum")?,
        exclusive_minimum: n.boolean("exclusiveMinimum")?,
        max_length: n.int("maxLength")?,
        min_length: n.int("minLength")?,
        pattern: n.string("pattern")?,
        max_items: n.int("maxItems")?,
        min_items: n.int("minItems")?,
        unique_items: n.boolean("uniqueItems")?,
        enum_: n.anys("enum")?,
        multiple_of: n.double("multipleOf")?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn query_or_form_parameter(n: Node<'_>, location: String) -> Result<QueryParameterSubSchema> {
    Ok(QueryParameterSubSchema {
        required: n.boolean("required")?,
        in_: location,
        description: n.string("description")?,
        name: n.string("name")?,
        allow_empty_value: n.boolean("allowEmptyValue")?,
        type_: n.string("type")?,
        format: n.string("format")?,
        items: n.child("items", primitives_items)?,
        collection_format: n.string("collectionFormat")?,
        default: n.any("default"),
        maximum: n.double("maximum")?,
        exclusive_maximum: n.boolean("exclusiveMaximum")?,
        minimum: n.double("minimum")?,
        exclusive_minimum: n.boolean("exclusiveMinimum")?,
        max_length: n.int("maxLength")?,
        min_length: n.int("minLength")?,
        pattern: n.string("pattern")?,
        max_items: n.int("maxItems")?,
        min_items: n.int("minItems")?,
        unique_items: n.boolean("uniqueItems")?,
        enum_: n.anys("enum")?,
        multiple_of: n.double("multipleOf")?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn primitives_items(n: Node<'_>) -> Result<PrimitivesItems> {
    Ok(PrimitivesItems {
        type_: n.string("type")?,
        format: n.string("format")?,
        items: n.child("items", primitives_items)?.map(Box::new),
        collection_format: n.string("collectionFormat")?,
        default: n.any("default"),
        maximum: n.double("maximum")?,
        exclusive_maximum: n.boolean("exclusiveMaximum")?,
        minimum: n.double("minimum")?,
        exclusive_minimum: n.boolean("exclusiveMinimum")?,
        max_length: n.int("maxLength")?,
        min_length: n.int("minLength")?,
        pattern: n.string("pattern")?,
        max_items: n.int("maxItems")?,
        min_items: n.int("minItems")?,
        unique_items: n.boolean("uniqueItems")?,
        enum_: n.anys("enum")?,
        multiple_of: n.double("multipleOf")?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn responses(n: Node<'_>) -> Result<Responses> {
    let mut response_code = Vec::new();
    for (code, value) in n.map {
        let is_code =
            code == "default" || (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()));
        if !is_code {
            continue;
        }
        let path = n.path.key(code);
        let r = as_object(value, &path)?;
        let oneof = if r.get("$ref").is_some() {
            response_value::Oneof::JsonReference(json_reference(r)?)
        } else {
            response_value::Oneof::Response(Box::new(response(r)?))
        };
        response_code.push(NamedResponseValue {
            name: code.clone(),
            value: Some(ResponseValue { oneof: Some(oneof) }),
        });
    }
    Ok(Responses {
        response_code,
        vendor_extension: n.vendor_extensions(),
    })
}

fn response(n: Node<'_>) -> Result<Response> {
    Ok(Response {
        description: n.string("description")?,
        schema: n.child("schema", schema_item)?,
        headers: n
            .entries("headers", |name, h| {
                Ok(NamedHeader {
                    name: name.to_owned(),
                    value: Some(header(h)?),
                })
            })?
            .map(|additional_properties| Headers {
                additional_properties,
            }),
        examples: n.child("examples", |e| {
            let additional_properties = e
                .map
                .iter()
                .map(|(k, v)| NamedAny {
                    name: k.clone(),
                    value: Some(any(v)),
                })
                .collect();
            Ok(Examples {
                additional_properties,
            })
        })?,
        vendor_extension: n.vendor_extensions(),
    })
}

fn header(n: Node<'_>) -> Result<Header> {
    Ok(Header {
        type_: n.string("type")?,
        format: n.string("format")?,
        items: n.child("items", primitives_items)?,
        collection_format: n.string("collectionFormat")?,
        default: n.any("default"),
        maximum: n.double("maximum")?,
        exclusive_maximum: n.boolean("exclusiveMaximum")?,
        minimum: n.double("minimum")?,
        exclusive_minimum: n.boolean("exclusiveMinimum")?,
        max_length: n.int("maxLength")?,
        min_length: n.int("minLength")?,
        pattern: n.string("pattern")?,
        max_items: n.int("maxItems")?,
        min_items: n.int("minItems")?,
        unique_items: n.boolean("uniqueItems")?,
        enum_: n.anys("enum")?,
        multiple_of: n.double("multipleOf")?,
        description: n.string("description")?,
        vendor_extension: n.vendor_extensions(),
    })
}

/// Keys a `FileSchema` may carry besides `x-*`, as gnostic checks them.
const FILE_SCHEMA_KEYS: &[&str] = &[
    "default",
    "description",
    "example",
    "externalDocs",
    "format",
    "readOnly",
    "required",
    "title",
    "type",
];

fn schema_item(n: Node<'_>) -> Result<SchemaItem> {
    let is_file = matches!(n.get("type"), Some(Value::String(t)) if t == "file")
        && n.map
            .keys()
            .all(|k| k.starts_with("x-") || FILE_SCHEMA_KEYS.contains(&k.as_str()));
    let oneof = if is_file {
        schema_item::Oneof::FileSchema(Box::new(FileSchema {
            format: n.string("format")?,
            title: n.string("title")?,
            description: n.string("description")?,
            default: n.any("default"),
            required: n.strings("required")?,
            type_: n.string("type")?,
            read_only: n.boolean("readOnly")?,
            external_docs: n.child("externalDocs", external_docs)?,
            example: n.any("example"),
            vendor_extension: n.vendor_extensions(),
        }))
    } else {
        schema_item::Oneof::Schema(Box::new(schema(n)?))
    };
    Ok(SchemaItem { oneof: Some(oneof) })
}

fn named_schema(name: &str, n: Node<'_>) -> Result<NamedSchema> {
    Ok(NamedSchema {
        name: name.to_owned(),
        value: Some(schema(n)?),
    })
}

fn schema(n: Node<'_>) -> Result<Schema> {
    Ok(Schema {
        xref: n.string("$ref")?,
        format: n.string("format")?,
        title: n.string("title")?,
        description: n.string("description")?,
        default: n.any("default"),
        multiple_of: n.double("multipleOf")?,
        maximum: n.double("maximum")?,
        exclusive_maximum: n.boolean("exclusiveMaximum")?,
        minimum: n.double("minimum")?,
        exclusive_minimum: n.boolean("exclusiveMinimum")?,
        max_length: n.int("maxLength")?,
        min_length: n.int("minLength")?,
        pattern: n.string("pattern")?,
        max_items: n.int("maxItems")?,
        min_items: n.int("minItems")?,
        unique_items: n.boolean("uniqueItems")?,
        max_properties: n.int("maxProperties")?,
        min_properties: n.int("minProperties")?,
        required: n.strings("required")?,
        enum_: n.anys("enum")?,
        additional_properties: match n.get("additionalProperties") {
            None => None,
            Some(Value::Bool(b)) => Some(AdditionalPropertiesItem {
                oneof: Some(additional_properties_item::Oneof::Boolean(*b)),
            }),
            Some(_) => n.child("additionalProperties", |s| {
                Ok(AdditionalPropertiesItem {
                    oneof: Some(additional_properties_item::Oneof::Schema(Box::new(schema(
                        s,
                    )?))),
                })
            })?,
        },
        type_: match n.get("type") {
            None => None,
            Some(Value::String(t)) => Some(TypeItem {
                value: vec![t.clone()],
            }),
            Some(Value::Array(_)) => Some(TypeItem {
                value: n.strings("type")?,
            }),
            Some(_) => {
                return Err(n
                    .path
                    .key("type")
                    .invalid_type("a string or array of strings"));
            }
        },
        items: match n.get("items") {
            None => None,
            Some(Value::Array(_)) => Some(ItemsItem {
                schema: n.children("items", schema)?,
            }),
            Some(_) => n.child("items", |s| {
                Ok(ItemsItem {
                    schema: vec![schema(s)?],
                })
            })?,
        },
        all_of: n.children("allOf", schema)?,
        properties: n
            .entries("properties", named_schema)?
            .map(|additional_properties| Properties {
                additional_properties,
            }),
        discriminator: n.string("discriminator")?,
        read_only: n.boolean("readOnly")?,
        xml: n.child("xml", |x| {
            Ok(Xml {
                name: x.string("name")?,
                namespace: x.string("namespace")?,
                prefix: x.string("prefix")?,
                attribute: x.boolean("attribute")?,
                wrapped: x.boolean("wrapped")?,
                vendor_extension: x.vendor_extensions(),
            })
        })?,
        external_docs: n.child("externalDocs", external_docs)?,
        example: n.any("example"),
        vendor_extension: n.vendor_extensions(),
    })
}

fn security_requirement(n: Node<'_>) -> Result<SecurityRequirement> {
    let mut additional_properties = Vec::with_capacity(n.map.len());
    for name in n.map.keys() {
        additional_properties.push(NamedStringArray {
            name: name.clone(),
            value: Some(StringArray {
                value: n.strings(name)?,
            }),
        });
    }
    Ok(SecurityRequirement {
        additional_properties,
    })
}

fn oauth2_scopes(n: Node<'_>) -> Result<Oauth2Scopes> {
    let mut additional_properties = Vec::with_capacity(n.map.len());
    for (name, value) in n.map {
        match value {
            Value::String(s) => {
                additional_properties.push(NamedString {
                    name: name.clone(),
                    value: s.clone(),
                });
            }
            _ => return Err(n.path.key(name).invalid_type("a string")),
        }
    }
    Ok(Oauth2Scopes {
        additional_properties,
    })
}

fn security_definition(n: Node<'_>) -> Result<SecurityDefinitionsItem> {
    use security_definitions_item::Oneof;
    let kind = n.string("type")?;
    let oneof = match kind.as_str() {
        "basic" => Oneof::BasicAuthenticationSecurity(BasicAuthenticationSecurity {
            type_: kind,
            description: n.string("description")?,
            vendor_extension: n.vendor_extensions(),
        }),
        "apiKey" => Oneof::ApiKeySecurity(ApiKeySecurity {
            type_: kind,
            name: n.string("name")?,
            in_: n.string("in")?,
            description: n.string("description")?,
            vendor_extension: n.vendor_extensions(),
        }),
        "oauth2" => {
            let flow = n.string("flow")?;
            let scopes = n.child("scopes", oauth2_scopes)?;
            match flow.as_str() {
                "implicit" => Oneof::Oauth2ImplicitSecurity(Oauth2ImplicitSecurity {
                    type_: kind,
                    flow,
                    scopes,
                    authorization_url: n.string("authorizationUrl")?,
                    description: n.string("description")?,
                    vendor_extension: n.vendor_extensions(),
                }),
                "password" | "application" => {
                    let security = Oauth2ApplicationSecurity {
                        type_: kind,
                        flow,
                        scopes,
                        token_url: n.string("tokenUrl")?,
                        description: n.string("description")?,
                        vendor_extension: n.vendor_extensions(),
                    };
                    if security.flow == "password" {
                        Oneof::Oauth2PasswordSecurity(security)
                    } else {
                        Oneof::Oauth2ApplicationSecurity(security)
                    }
                }
                "accessCode" => Oneof::Oauth2AccessCodeSecurity(Oauth2AccessCodeSecurity {
                    type_: kind,
                    flow,
                    scopes,
                    authorization_url: n.string("authorizationUrl")?,
                    token_url: n.string("tokenUrl")?,
                    description: n.string("description")?,
                    vendor_extension: n.vendor_extensions(),
                }),
                other => {
                    return Err(n
                        .path
                        .key("flow")
                        .invalid_value(format!("unknown oauth2 flow {other:?}")));
                }
            }
        }
        other => {
            return Err(n
                .path
                .key("type")
                .invalid_value(format!("unknown security scheme type {other:?}")));
        }
    };
    Ok(SecurityDefinitionsItem { oneof: Some(oneof) })
}

// ---------------------------------------------------------------------------
// YAML text for Any.yaml.
// ---------------------------------------------------------------------------

/// Renders a JSON value as block-style YAML text, the way gnostic fills
/// `Any.yaml` (it re-marshals the parsed node with yaml.v3 after clearing
/// JSON's flow/quote styles): a string scalar `merge` is `merge\n`, a list of
/// objects is `- group: apps\n  kind: Deployment\n  version: v1\n`, nested
/// mappings indent by four spaces. Strings stay plain only when no YAML 1.1
/// or 1.2 reader (yaml.v2, yaml.v3, PyYAML) could take them for anything but
/// a string; all others are double-quoted with escapes. Floats always carry a
/// `.` so they read back as floats.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, 4, false, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, false, &mut out),
        scalar => {
            write_inline(scalar, &mut out);
            out.push('\n');
        }
    }
    out
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn indent(out: &mut String, width: usize) {
    out.extend(std::iter::repeat_n(' ', width));
}

/// Writes a mapping whose keys sit at column `keys`; nested blocks go to
/// column `nested`. With `continued` the first key goes on the current line
/// (after a `- `). yaml.v3 nests a block under a key four columns in from
/// the enclosing block, which for a mapping inside a sequence item is the
/// sequence's column, not the key's.
fn write_map(map: &Obj, keys: usize, nested: usize, continued: bool, out: &mut String) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !continued {
            indent(out, keys);
        }
        write_string(key, out);
        out.push(':');
        match value {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                write_map(child, nested, nested + 4, false, out);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(items, nested, false, out);
            }
            scalar => {
                out.push(' ');
                write_inline(scalar, out);
                out.push('\n');
            }
        }
    }
}

/// Writes a sequence whose `- ` markers sit at column `width`.
fn write_seq(items: &[Value], width: usize, continued: bool, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !continued {
            indent(out, width);
        }
        out.push_str("- ");
        match item {
            Value::Object(child) if is_block(item) => {
                write_map(child, width + 2, width + 4, true, out);
            }
            Value::Array(child) if is_block(item) => write_seq(child, width + 2, true, out),
            scalar => {
                write_inline(scalar, out);
                out.push('\n');
            }
        }
    }
}

/// Scalars and empty collections.
fn write_inline(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_number(n: &Number, out: &mut String) {
    let text = n.to_string();
    if n.is_i64() || n.is_u64() {
        out.push_str(&text);
        return;
    }
    // serde_json prints floats as `1.5`, `1.0`, `1e20` or `1.5e-7`; YAML 1.1
    // readers want a `.` in the mantissa and a sign on the exponent.
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text.as_str(), None),
    };
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    if let Some(exponent) = exponent {
        out.push('e');
        if !exponent.starts_with(['+', '-']) {
            out.push('+');
        }
        out.push_str(exponent);
    }
}

/// Words that some YAML reader resolves to a bool or null when plain.
const RESERVED_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Whether `s` reads back as this very string when written as a plain
/// scalar, under YAML 1.1 (yaml.v2, PyYAML) and 1.2 (yaml.v3) alike: it
/// starts with a letter (so no number, timestamp, indicator or `~`), has no
/// `:`, `#`, brackets, tabs or line breaks, does not end in a space, and is
/// not a bool or null word such as `on` or `No`.
fn plain_is_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphabetic()
        && *last != b' '
        && bytes.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'.'
                        | b'/'
                        | b'-'
                        | b' '
                        | b','
                        | b'='
                        | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b'+'
                        | b';'
                        | b'$'
                        | b'\''
                )
        })
        && !RESERVED_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

fn write_string(s: &str, out: &mut String) {
    if plain_is_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Controls, DEL, C1 controls, line/paragraph separators, BOM and
            // the non-characters are not printable for YAML readers.
            '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
