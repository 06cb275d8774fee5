//! LIST of a collection: selectors, pagination, Table and metadata-only forms.

use axum::response::Response;
use http::StatusCode;
use k1s_apimachinery::{FieldError, FieldSelector, GroupKind, Path, Selector, Status};
use serde_json::{Map, Value, json};

use super::negotiation::{Output, parse_accept, resource_output};
use super::{Call, Query, response};
use crate::registry::Resource;
use crate::registry::generic::{GenericStore, ListOptions, ListPage};
use crate::registry::table::partial_metadata;

/// Parses the selector and paging parameters of a list or watch.
pub fn list_options(
    generic: &GenericStore,
    res: &Resource,
    q: &Query,
) -> Result<ListOptions, Status> {
    let label_selector = match q.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => Some(Selector::parse(s).map_err(|e| Status::bad_request(&e.to_string()))?),
        None => None,
    };
    let field_selector = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => {
            let fs = FieldSelector::parse(s).map_err(|e| Status::bad_request(&e.to_string()))?;
            generic.check_field_selector(res, &fs)?;
            Some(fs)
        }
        None => None,
    };
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| Status::bad_request(&format!("invalid limit \"{l}\"")))?,
        None => 0,
    };
    // Decoded for lists too, as upstream decodes every list option before serving.
    if let Some(t) = q.get("timeoutSeconds").filter(|s| !s.is_empty())
        && t.parse::<i64>().is_err()
    {
        return Err(Status::bad_request(&format!(
            "invalid timeoutSeconds \"{t}\""
        )));
    }
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit: usize::try_from(limit).unwrap_or(0),
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

/// Upstream's `ValidateListOptions` for a list (not a watch): 422 Invalid on
/// `ListOptions.meta.k8s.io`.
fn validate_list(q: &Query) -> Result<(), Status> {
    let get = |name: &str| q.get(name).map(String::as_str).unwrap_or("");
    let rvm = Path::new("resourceVersionMatch");
    let mut errs = Vec::new();
    let matching = get("resourceVersionMatch");
    if !matching.is_empty() {
        if get("resourceVersion").is_empty() {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !get("continue").is_empty() {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if matching != "Exact" && matching != "NotOlderThan" {
            errs.push(FieldError::not_supported(
                &rvm,
                matching,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if matching == "Exact" && get("resourceVersion") == "0" {
            errs.push(FieldError::forbidden(
                &rvm,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.contains_key("sendInitialEvents") {
        errs.push(FieldError::forbidden(
            &Path::new("sendInitialEvents"),
            "sendInitialEvents is forbidden for list",
        ));
    }
    if errs.is_empty() {
        return Ok(());
    }
    Err(Status::invalid(
        &GroupKind::new("meta.k8s.io", "ListOptions"),
        "",
        &errs,
    ))
}

/// Serves `list`.
pub async fn list(call: Call) -> Result<Response, Status> {
    let output = resource_output(&parse_accept(call.header(http::header::ACCEPT)))?;
    let generic = &call.server.generic;
    let res = &call.resource;
    let opts = list_options(generic, res, &call.query)?;
    validate_list(&call.query)?;
    if output == Output::Json {
        return list_json(&call, &opts).await;
    }
    let page = generic.list(res, call.namespace(), &opts).await?;
    let meta = list_meta(&page);
    let info = &res.info;
    let body = match output {
        Output::Table => {
            let printer = res.strategy.table(&info.group, &info.kind);
            let include = call
                .query
                .get("includeObject")
                .map(String::as_str)
                .unwrap_or("Metadata");
            printer.table(&page.items, include, meta, true)
        }
        Output::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": Value::Object(meta),
            "items": page.items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        Output::Json | Output::Yaml => json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": Value::Object(meta),
            "items": page.items,
        }),
    };
    Ok(match output {
        Output::Yaml => {
            response::bytes_response(StatusCode::OK, "application/yaml", response::to_yaml(&body))
        }
        _ => response::json(StatusCode::OK, &body),
    })
}

/// The list metadata of a page: resourceVersion, continue, remainingItemCount.
fn list_meta(page: &ListPage) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(page.revision.to_string()));
    if let Some(c) = &page.continue_token {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = page.remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    meta
}

/// A JSON list, encoded one object at a time as the store yields them (most spliced from
/// their stored bytes): the response never holds more than one decoded object, whatever
/// the size of the list.
async fn list_json(call: &Call, opts: &ListOptions) -> Result<Response, Status> {
    let encode_error =
        |e: serde_json::Error| Status::internal_error(&format!("cannot encode list: {e}"));
    let mut items = vec![b'['];
    let page = call
        .server
        .generic
        .list_json(&call.resource, call.namespace(), opts, &mut items)
        .await?;
    items.push(b']');
    let info = &call.resource.info;
    let head = json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version(),
        "metadata": Value::Object(list_meta(&page)),
    });
    let mut body = serde_json::to_vec(&head).map_err(encode_error)?;
    // Replace the closing brace of the head with the items and close again.
    body.pop();
    body.extend_from_slice(b",\"items\":");
    body.extend_from_slice(&items);
    body.extend_from_slice(b"}\n");
    Ok(response::bytes_response(
        StatusCode::OK,
        "application/json",
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Query {
        super::super::parse_query(Some(q))
    }

    #[tokio::test]
    async fn pages_count_what_remains_unless_a_selector_filters() {
        let t = crate::test_util::TestApiServer::new().await;
        let api = t.api();
        let path = "/api/v1/namespaces/default/configmaps";
        for i in 0..5 {
            api.create(
                path,
                json!({"metadata": {"name": format!("cm-{i}"), "labels": {"n": i.to_string()}}}),
            )
            .await;
        }
        let (code, first) = api
            .call("GET", &format!("{path}?limit=2"), &json!(null))
            .await;
        assert_eq!(code, 200, "{first}");
        assert_eq!(first["metadata"]["remainingItemCount"], 3, "{first}");
        // A write after the first page does not change what the next page counts.
        api.create(path, json!({"metadata": {"name": "cm-9"}}))
            .await;
        let token = first["metadata"]["continue"].as_str().unwrap_or_default();
        let (_, second) = api
            .call(
                "GET",
                &format!("{path}?limit=2&continue={token}"),
                &json!(null),
            )
            .await;
        assert_eq!(second["items"][0]["metadata"]["name"], "cm-2", "{second}");
        assert_eq!(second["metadata"]["remainingItemCount"], 1, "{second}");
        let token = second["metadata"]["continue"].as_str().unwrap_or_default();
        let (_, last) = api
            .call(
                "GET",
                &format!("{path}?limit=2&continue={token}"),
                &json!(null),
            )
            .await;
        assert!(
            last["metadata"].get("remainingItemCount").is_none(),
            "{last}"
        );
        assert!(last["metadata"].get("continue").is_none(), "{last}");
        let (_, filtered) = api
            .call(
                "GET",
                &format!("{path}?limit=1&labelSelector=n"),
                &json!(null),
            )
            .await;
        assert!(filtered["metadata"]["continue"].is_string(), "{filtered}");
        assert!(
            filtered["metadata"].get("remainingItemCount").is_none(),
            "{filtered}"
        );
    }

    #[test]
    fn list_options_are_validated_like_upstream_422() {
        // A bogus resourceVersionMatch was a 400; upstream's ListOptions validation is 422.
        for q in [
            "resourceVersionMatch=Bogus&resourceVersion=1",
            "resourceVersionMatch=Exact",
            "resourceVersionMatch=Exact&resourceVersion=1&continue=x",
            "resourceVersionMatch=Exact&resourceVersion=0",
            "sendInitialEvents=false",
        ] {
            let err = validate_list(&query(q)).unwrap_err();
            assert_eq!((err.code(), err.reason.as_str()), (422, "Invalid"), "{q}");
            assert!(
                err.message
                    .starts_with("ListOptions.meta.k8s.io \"\" is invalid"),
                "{q}: {}",
                err.message
            );
        }
        for q in [
            "",
            "resourceVersion=5&resourceVersionMatch=NotOlderThan",
            "limit=1",
        ] {
            assert!(validate_list(&query(q)).is_ok(), "{q}");
        }
    }
}
