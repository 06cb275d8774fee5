//! The table of built-in kinds: one line each, naming the k8s-openapi type, its
//! strategy and its discovery facts (short names, categories, subresources).

pub mod admissionregistration;
pub mod apiregistration;
pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod certificates;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod flowcontrol;
pub mod misc;
pub mod networking;
pub mod node;
#[cfg(test)]
mod parity;
pub mod policy;
pub mod rbac;
pub mod resource;
pub mod scheduling;
pub mod storage;
pub mod validation;

use std::any::TypeId;
use std::sync::Arc;

use crate::registry::strategy::Plain;
use crate::registry::{ALL_VERBS, Conversion, Resource, ResourceInfo, Strategy, Subresource};
use crate::schema::builtin::{BuiltinSchemas, gvk};
use crate::schema::model::Definitions;

/// Builds the built-in resources and their schemas.
pub struct Builder {
    schemas: BuiltinSchemas,
    resources: Vec<Resource>,
}

/// Fluent settings of the kind just added.
pub struct KindEntry<'a> {
    resource: &'a mut Resource,
}

impl KindEntry<'_> {
    /// Short names for kubectl (`deploy`).
    pub fn short_names(self, names: &[&str]) -> Self {
        self.resource.info.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Categories (`all`).
    pub fn categories(self, cats: &[&str]) -> Self {
        self.resource.info.categories = cats.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Serves `/status`.
    pub fn status(self) -> Self {
        self.resource.info.subresources.push(Subresource::Status);
        self
    }

    /// Serves `/scale`.
    pub fn scale(self) -> Self {
        self.resource.info.subresources.push(Subresource::Scale);
        self
    }

    /// Serves `/binding` (pods).
    pub fn binding(self) -> Self {
        self.resource.info.subresources.push(Subresource::Binding);
        self
    }

    /// Serves `/eviction` (pods).
    pub fn eviction(self) -> Self {
        self.resource.info.subresources.push(Subresource::Eviction);
        self
    }

    /// Serves `/log`, `/exec`, `/attach` and `/portforward` (pods), proxied to the kubelet.
    pub fn streaming(self) -> Self {
        self.resource.info.subresources.extend([
            Subresource::Log,
            Subresource::Exec,
            Subresource::Attach,
            Subresource::PortForward,
        ]);
        self
    }

    /// Serves `/approval` (CertificateSigningRequests).
    pub fn approval(self) -> Self {
        self.resource.info.subresources.push(Subresource::Approval);
        self
    }

    /// Serves `/ephemeralcontainers` (pods).
    pub fn ephemeral_containers(self) -> Self {
        self.resource
            .info
            .subresources
            .push(Subresource::EphemeralContainers);
        self
    }

    /// Serves `/resize` (pods: in-place resource changes).
    pub fn resize(self) -> Self {
        self.resource.info.subresources.push(Subresource::Resize);
        self
    }

    /// Serves `/finalize` (namespaces).
    pub fn finalize(self) -> Self {
        self.resource.info.subresources.push(Subresource::Finalize);
        self
    }

    /// Serves `/token` (service accounts' TokenRequest).
    pub fn token(self) -> Self {
        self.resource.info.subresources.push(Subresource::Token);
        self
    }

    /// Answers a delete that removes the object with the object (upstream's
    /// `ReturnDeletedObject`).
    pub fn returns_deleted_object(self) -> Self {
        self.resource.info.returns_deleted_object = true;
        self
    }

    /// Restricts the verbs.
    pub fn verbs(self, verbs: &[&'static str]) -> Self {
        self.resource.info.verbs = verbs.to_vec();
        self
    }

    /// Stores objects under another resource's key prefix, converted by `conversion`
    /// (another version of the same resource).
    pub fn stored_as(self, key_prefix: &str, conversion: Arc<dyn Conversion>) -> Self {
        self.resource.info.key_prefix = format!("/registry/{key_prefix}");
        self.resource.info.storage_version = false;
        self.resource.conversion = Some(conversion);
        self
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            schemas: BuiltinSchemas::new(),
            resources: Vec::new(),
        }
    }

    /// Adds kind `T` with `strategy`.
    pub fn kind<T>(&mut self, strategy: impl Strategy) -> KindEntry<'_>
    where
        T: k8s_openapi::Resource + schemars::JsonSchema + 'static,
    {
        let group = T::GROUP.to_string();
        let definition = self.schemas.add::<T>(gvk(T::GROUP, T::VERSION, T::KIND));
        let plural = T::URL_PATH_SEGMENT.to_string();
        let namespaced =
            TypeId::of::<T::Scope>() == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        let key_prefix = if group.is_empty() || is_legacy_storage(&group) {
            format!("/registry/{plural}")
        } else {
            format!("/registry/{group}/{plural}")
        };
        self.resources.push(Resource {
            info: ResourceInfo {
                group,
                version: T::VERSION.to_string(),
                kind: T::KIND.to_string(),
                singular: T::KIND.to_lowercase(),
                plural,
                namespaced,
                short_names: Vec::new(),
                categories: Vec::new(),
                verbs: ALL_VERBS.to_vec(),
                subresources: Vec::new(),
                definition,
                key_prefix,
                storage_version: true,
                custom: false,
                returns_deleted_object: false,
            },
            strategy: Arc::new(strategy),
            conversion: None,
        });
        let resource = self.resources.last_mut().expect("just pushed");
        KindEntry { resource }
    }

    /// Finishes: the resources in registration order and every schema.
    pub fn build(self) -> (Vec<Resource>, Definitions) {
        (self.resources, self.schemas.build())
    }
}

/// Groups whose resources upstream keeps directly under `/registry/<resource>`.
fn is_legacy_storage(group: &str) -> bool {
    matches!(
        group,
        "apps" | "batch" | "autoscaling" | "policy" | "extensions"
    )
}

/// Every built-in kind of the served groups.
pub fn builtin(services: &core::service::ServiceAllocators) -> Builder {
    use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
    use k8s_openapi::api::apps::v1 as apps_v1;
    use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
    use k8s_openapi::api::batch::v1 as batch_v1;
    use k8s_openapi::api::certificates::v1 as certificates;
    use k8s_openapi::api::coordination::v1 as coordination;
    use k8s_openapi::api::core::v1 as core_v1;
    use k8s_openapi::api::discovery::v1 as discovery;
    use k8s_openapi::api::events::v1 as events;
    use k8s_openapi::api::flowcontrol::v1 as flowcontrol;
    use k8s_openapi::api::networking::v1 as networking;
    use k8s_openapi::api::node::v1 as node;
    use k8s_openapi::api::policy::v1 as policy;
    use k8s_openapi::api::rbac::v1 as rbac;
    use k8s_openapi::api::scheduling::v1 as scheduling;
    use k8s_openapi::api::storage::v1 as storage;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;

    let mut b = Builder::new();
    // core/v1
    b.kind::<core_v1::Pod>(core::pod::PodStrategy)
        .short_names(&["po"])
        .categories(&["all"])
        .binding()
        .status()
        .eviction()
        .ephemeral_containers()
        .resize()
        .streaming()
        .returns_deleted_object();
    b.kind::<core_v1::Service>(core::service::ServiceStrategy::new(services.clone()))
        .short_names(&["svc"])
        .categories(&["all"])
        .status()
        .returns_deleted_object();
    b.kind::<core_v1::ConfigMap>(core::configmap::ConfigMapStrategy)
        .short_names(&["cm"]);
    b.kind::<core_v1::Secret>(core::secret::SecretStrategy);
    // Upstream serves no deletecollection of namespaces: one request must not be able
    // to empty the cluster.
    b.kind::<core_v1::Namespace>(core::namespace::NamespaceStrategy)
        .short_names(&["ns"])
        .verbs(&[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ])
        .status()
        .finalize()
        .returns_deleted_object();
    b.kind::<core_v1::Node>(core::node::NodeStrategy)
        .short_names(&["no"])
        .status();
    b.kind::<core_v1::PersistentVolume>(core::persistentvolume::PersistentVolumeStrategy)
        .short_names(&["pv"])
        .status()
        .returns_deleted_object();
    b.kind::<core_v1::PersistentVolumeClaim>(
        core::persistentvolumeclaim::PersistentVolumeClaimStrategy,
    )
    .short_names(&["pvc"])
    .status()
    .returns_deleted_object();
    b.kind::<core_v1::ServiceAccount>(core::serviceaccount::ServiceAccountStrategy)
        .short_names(&["sa"])
        .token()
        .returns_deleted_object();
    b.kind::<core_v1::Endpoints>(core::endpoints::EndpointsStrategy)
        .short_names(&["ep"]);
    b.kind::<core_v1::Event>(core::event::EventStrategy)
        .short_names(&["ev"]);
    b.kind::<core_v1::LimitRange>(core::limitrange::LimitRangeStrategy)
        .short_names(&["limits"]);
    b.kind::<core_v1::ResourceQuota>(core::resourcequota::ResourceQuotaStrategy)
        .short_names(&["quota"])
        .status()
        .returns_deleted_object();
    b.kind::<core_v1::ReplicationController>(
        core::replicationcontroller::ReplicationControllerStrategy,
    )
    .short_names(&["rc"])
    .categories(&["all"])
    .status()
    .scale();
    b.kind::<core_v1::PodTemplate>(core::podtemplate::PodTemplateStrategy)
        .returns_deleted_object();
    b.kind::<core_v1::ComponentStatus>(Plain)
        .short_names(&["cs"])
        .verbs(&["get", "list"]);
    b.kind::<core_v1::Binding>(core::binding::BindingStrategy)
        .verbs(&["create"]);
    // apps/v1
    b.kind::<apps_v1::Deployment>(apps::DeploymentStrategy)
        .short_names(&["deploy"])
        .categories(&["all"])
        .status()
        .scale();
    b.kind::<apps_v1::ReplicaSet>(apps::ReplicaSetStrategy)
        .short_names(&["rs"])
        .categories(&["all"])
        .status()
        .scale();
    b.kind::<apps_v1::StatefulSet>(apps::StatefulSetStrategy)
        .short_names(&["sts"])
        .categories(&["all"])
        .status()
        .scale();
    b.kind::<apps_v1::DaemonSet>(apps::DaemonSetStrategy)
        .short_names(&["ds"])
        .categories(&["all"])
        .status();
    b.kind::<apps_v1::ControllerRevision>(apps::ControllerRevisionStrategy);
    // authentication.k8s.io/v1: reviews answered from the request (handlers/review.rs),
    // never stored.
    b.kind::<k8s_openapi::api::authentication::v1::SelfSubjectReview>(Plain)
        .verbs(&["create"]);
    b.kind::<k8s_openapi::api::authentication::v1::TokenReview>(Plain)
        .verbs(&["create"]);
    // authorization.k8s.io/v1: access reviews answered by the authorizer, never stored.
    b.kind::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>(Plain)
        .verbs(&["create"]);
    b.kind::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(Plain)
        .verbs(&["create"]);
    b.kind::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>(Plain)
        .verbs(&["create"]);
    b.kind::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(Plain)
        .verbs(&["create"]);
    // batch/v1
    b.kind::<batch_v1::Job>(batch::JobStrategy)
        .categories(&["all"])
        .status();
    b.kind::<batch_v1::CronJob>(batch::CronJobStrategy)
        .short_names(&["cj"])
        .categories(&["all"])
        .status();
    // autoscaling: v2 is stored, v1 converts.
    b.kind::<autoscaling_v2::HorizontalPodAutoscaler>(autoscaling::HorizontalPodAutoscalerStrategy)
        .short_names(&["hpa"])
        .categories(&["all"])
        .status();
    b.kind::<autoscaling_v1::HorizontalPodAutoscaler>(autoscaling::HorizontalPodAutoscalerStrategy)
        .short_names(&["hpa"])
        .categories(&["all"])
        .status()
        .stored_as("horizontalpodautoscalers", Arc::new(misc::HpaV1Conversion));
    // networking.k8s.io/v1
    b.kind::<networking::Ingress>(self::networking::IngressStrategy)
        .short_names(&["ing"])
        .status();
    b.kind::<networking::IngressClass>(self::networking::IngressClassStrategy);
    b.kind::<networking::NetworkPolicy>(self::networking::NetworkPolicyStrategy)
        .short_names(&["netpol"]);
    b.kind::<networking::IPAddress>(self::networking::IpAddressStrategy)
        .short_names(&["ip"]);
    b.kind::<networking::ServiceCIDR>(self::networking::ServiceCidrStrategy)
        .status();
    // policy/v1
    b.kind::<policy::PodDisruptionBudget>(crate::kinds::policy::PodDisruptionBudgetStrategy)
        .short_names(&["pdb"])
        .status();
    // rbac.authorization.k8s.io/v1
    b.kind::<rbac::ClusterRole>(self::rbac::ClusterRoleStrategy);
    b.kind::<rbac::ClusterRoleBinding>(self::rbac::ClusterRoleBindingStrategy);
    b.kind::<rbac::Role>(self::rbac::RoleStrategy);
    b.kind::<rbac::RoleBinding>(self::rbac::RoleBindingStrategy);
    // coordination.k8s.io/v1
    b.kind::<coordination::Lease>(self::coordination::LeaseStrategy);
    // discovery.k8s.io/v1
    b.kind::<discovery::EndpointSlice>(self::discovery::EndpointSliceStrategy);
    // storage.k8s.io/v1
    b.kind::<storage::StorageClass>(self::storage::StorageClassStrategy)
        .short_names(&["sc"])
        .returns_deleted_object();
    b.kind::<storage::CSIDriver>(self::storage::CsiDriverStrategy)
        .returns_deleted_object();
    b.kind::<storage::CSINode>(self::storage::CsiNodeStrategy)
        .returns_deleted_object();
    b.kind::<storage::CSIStorageCapacity>(self::storage::CsiStorageCapacityStrategy);
    b.kind::<storage::VolumeAttachment>(self::storage::VolumeAttachmentStrategy)
        .status()
        .returns_deleted_object();
    b.kind::<storage::VolumeAttributesClass>(self::storage::VolumeAttributesClassStrategy)
        .short_names(&["vac"])
        .returns_deleted_object();
    // scheduling.k8s.io/v1
    b.kind::<scheduling::PriorityClass>(self::scheduling::PriorityClassStrategy)
        .short_names(&["pc"]);
    // node.k8s.io/v1
    b.kind::<node::RuntimeClass>(self::node::RuntimeClassStrategy);
    // certificates.k8s.io/v1
    b.kind::<certificates::CertificateSigningRequest>(self::certificates::CsrStrategy)
        .short_names(&["csr"])
        .approval()
        .status();
    // events.k8s.io/v1 shares storage with core/v1 events.
    b.kind::<events::Event>(core::event::EventStrategy)
        .short_names(&["ev"])
        .stored_as("events", Arc::new(core::event::EventsV1Conversion));
    // admissionregistration.k8s.io/v1
    b.kind::<admissionregistration::MutatingWebhookConfiguration>(
        self::admissionregistration::WebhookConfigurationStrategy::MUTATING,
    )
    .categories(&["api-extensions"]);
    b.kind::<admissionregistration::ValidatingWebhookConfiguration>(
        self::admissionregistration::WebhookConfigurationStrategy::VALIDATING,
    )
    .categories(&["api-extensions"]);
    b.kind::<admissionregistration::ValidatingAdmissionPolicy>(
        self::admissionregistration::ValidatingAdmissionPolicyStrategy,
    )
    .categories(&["api-extensions"])
    .status();
    b.kind::<admissionregistration::ValidatingAdmissionPolicyBinding>(
        self::admissionregistration::ValidatingAdmissionPolicyBindingStrategy,
    )
    .categories(&["api-extensions"]);
    // apiextensions.k8s.io/v1
    b.kind::<apiextensions::CustomResourceDefinition>(crate::crd::CrdStrategy)
        .short_names(&["crd", "crds"])
        .categories(&["api-extensions"])
        .status();
    // resource.k8s.io/v1 (dynamic resource allocation, GA in 1.34)
    {
        use k8s_openapi::api::resource::v1 as dra;
        b.kind::<dra::DeviceClass>(self::resource::DeviceClassStrategy);
        b.kind::<dra::ResourceClaim>(self::resource::ResourceClaimStrategy)
            .status();
        b.kind::<dra::ResourceClaimTemplate>(self::resource::ResourceClaimTemplateStrategy);
        b.kind::<dra::ResourceSlice>(self::resource::ResourceSliceStrategy);
    }
    // apiregistration.k8s.io/v1: the aggregation layer's registrations (aggregator/).
    b.kind::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
        self::apiregistration::ApiServiceStrategy,
    )
    .categories(&["api-extensions"])
    .status();
    // flowcontrol.apiserver.k8s.io/v1
    b.kind::<flowcontrol::FlowSchema>(self::flowcontrol::FlowSchemaStrategy)
        .status();
    b.kind::<flowcontrol::PriorityLevelConfiguration>(
        self::flowcontrol::PriorityLevelConfigurationStrategy,
    )
    .status();
    b
}
