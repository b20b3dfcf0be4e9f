//! A moto server (AWS API test double) on 127.0.0.1, started per test on a free port.
//! `scripts/test` installs moto into a virtualenv and points `IRSA_MIGRATE_MOTO` at its
//! `moto_server`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let server = std::env::var("IRSA_MIGRATE_MOTO").expect(
            "IRSA_MIGRATE_MOTO must name moto_server; run the suite with scripts/test, which installs moto",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS-managed policies (AmazonEKSWorkerNodePolicy...) exist only when asked for.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // The fixtures' account.
            .env("MOTO_ACCOUNT_ID", "111122223333")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The environment a user would set to point the tool (or the AWS CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

impl Moto {
    /// An SDK IAM client for seeding and inspecting this server directly, as an operator's
    /// colleague would change IAM behind the tool's back.
    pub fn iam(&self, runtime: &tokio::runtime::Runtime) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk_config(runtime))
    }

    fn sdk_config(&self, runtime: &tokio::runtime::Runtime) -> aws_config::SdkConfig {
        runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    "testing", "testing", None, None, "test",
                ))
                .load(),
        )
    }
}

impl Moto {
    /// Creates the demo's IAM roles, inline policies and customer policies in moto.
    pub fn seed_demo_iam(&self) {
        let details: Value = serde_json::from_str(include_str!(
            "../../demo/snapshot/account-authorization-details.json"
        ))
        .unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let iam = self.iam(&runtime);
        runtime.block_on(async {
            for policy in details["Policies"].as_array().unwrap() {
                let arn = policy["Arn"].as_str().unwrap();
                if arn.contains(":iam::aws:") {
                    continue;
                }
                let document = &policy["PolicyVersionList"][0]["Document"];
                iam.create_policy()
                    .policy_name(policy["PolicyName"].as_str().unwrap())
                    .policy_document(document.to_string())
                    .send()
                    .await
                    .unwrap();
            }
            for role in details["RoleDetailList"].as_array().unwrap() {
                let name = role["RoleName"].as_str().unwrap();
                iam.create_role()
                    .role_name(name)
                    .path(role["Path"].as_str().unwrap())
                    .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                    .send()
                    .await
                    .unwrap();
                for inline in role["RolePolicyList"].as_array().unwrap() {
                    iam.put_role_policy()
                        .role_name(name)
                        .policy_name(inline["PolicyName"].as_str().unwrap())
                        .policy_document(inline["PolicyDocument"].to_string())
                        .send()
                        .await
                        .unwrap();
                }
                for attached in role["AttachedManagedPolicies"].as_array().unwrap() {
                    iam.attach_role_policy()
                        .role_name(name)
                        .policy_arn(attached["PolicyArn"].as_str().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        });
    }

    /// Creates the EKS cluster `name`; moto gives it an OIDC issuer of its own.
    pub fn create_cluster(&self, name: &str) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let create = aws_sdk_eks::Client::new(&self.sdk_config(&runtime))
            .create_cluster()
            .name(name)
            .version("1.29")
            .role_arn("arn:aws:iam::111122223333:role/eks-cluster")
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids("subnet-0a1b2c3d")
                    .build(),
            )
            .send();
        runtime
            .block_on(create)
            .expect("moto creates the EKS cluster");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
