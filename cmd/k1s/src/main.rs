//! k1s
fn main() {
    let s = schemars::schema_for!(k8s_openapi::api::apps::v1::Deployment);
    println!("{}", serde_json::to_string_pretty(&s).unwrap());
}
