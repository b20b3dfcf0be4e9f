//! A moto server (AWS API test double) on 127.0.0.1, started per test on a free port.
//! `scripts/test` installs moto into a virtualenv and points `IRSA_MIGRATE_MOTO` at its
//! `moto_server`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// A session in the fixtures' account 111122223333: moto serves each request from the
    /// account its access key belongs to, so other accounts can be reached with their own keys.
    credentials: (String, String, String),
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
            // No MOTO_ACCOUNT_ID: it would pin every request to one account.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        // Generous: on a loaded machine (several clusters starting at once) its imports alone
        // can take half a minute.
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 120 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            credentials: Default::default(),
        };
        moto.credentials = moto.credentials_in("111122223333");
        moto
    }

    /// The environment a user would set to point the tool (or the AWS CLI) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", self.credentials.0.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.credentials.1.clone()),
            ("AWS_SESSION_TOKEN", self.credentials.2.clone()),
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
        let (key, secret, token) = &self.credentials;
        self.sdk_config_as(runtime, key, secret, token)
    }

    /// An SDK configuration for this server with the given session's credentials.
    pub fn sdk_config_as(
        &self,
        runtime: &tokio::runtime::Runtime,
        key: &str,
        secret: &str,
        token: &str,
    ) -> aws_config::SdkConfig {
        runtime.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(&self.endpoint)
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    key,
                    secret,
                    Some(token.to_string()),
                    None,
                    "test",
                ))
                .load(),
        )
    }
}

impl Moto {
    /// The role's trust policy, as a JSON document.
    pub fn trust(&self, role: &str) -> Value {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let get = self.iam(&runtime).get_role().role_name(role).send();
        let output = runtime.block_on(get).unwrap();
        let text = output
            .role()
            .unwrap()
            .assume_role_policy_document()
            .unwrap();
        irsa_migrate::iam::policy::PolicyDocument::from_text(text)
            .unwrap()
            .0
    }

    /// How many OIDC providers the fixtures' account has.
    pub fn providers(&self) -> usize {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let list = self.iam(&runtime).list_open_id_connect_providers().send();
        runtime
            .block_on(list)
            .unwrap()
            .open_id_connect_provider_list()
            .len()
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
                // Tags name owners (eksctl's): seeded as the demo has them.
                let tags = role["Tags"].as_array().into_iter().flatten().map(|tag| {
                    aws_sdk_iam::types::Tag::builder()
                        .key(tag["Key"].as_str().unwrap())
                        .value(tag["Value"].as_str().unwrap())
                        .build()
                        .unwrap()
                });
                iam.create_role()
                    .role_name(name)
                    .path(role["Path"].as_str().unwrap())
                    .assume_role_policy_document(role["AssumeRolePolicyDocument"].to_string())
                    .set_tags(Some(tags.collect()))
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

    /// Makes `role` again through the CloudFormation stack `stack` (a role made by a template,
    /// as a CDK app or a team's stack makes it): the same path, trust, inline and attached
    /// policies and tags, now a resource of the stack. Returns the stack's id.
    pub fn move_into_stack(&self, role: &str, stack: &str) -> String {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let iam = self.iam(&runtime);
        let template = runtime.block_on(async {
            let found = iam.get_role().role_name(role).send().await.unwrap();
            let found = found.role().unwrap();
            let trust = irsa_migrate::iam::policy::PolicyDocument::from_text(
                found.assume_role_policy_document().unwrap(),
            )
            .unwrap()
            .0;
            let mut policies = Vec::new();
            let names = iam
                .list_role_policies()
                .role_name(role)
                .send()
                .await
                .unwrap();
            for name in names.policy_names() {
                let policy = iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await
                    .unwrap();
                let document =
                    irsa_migrate::iam::policy::PolicyDocument::from_text(policy.policy_document())
                        .unwrap()
                        .0;
                policies.push(json!({"PolicyName": name, "PolicyDocument": document}));
                iam.delete_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await
                    .unwrap();
            }
            let attached = iam
                .list_attached_role_policies()
                .role_name(role)
                .send()
                .await
                .unwrap();
            let mut managed = Vec::new();
            for policy in attached.attached_policies() {
                let arn = policy.policy_arn().unwrap();
                managed.push(arn.to_string());
                iam.detach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await
                    .unwrap();
            }
            let tags: Vec<Value> = found
                .tags()
                .iter()
                .map(|t| json!({"Key": t.key(), "Value": t.value()}))
                .collect();
            let path = found.path().to_string();
            iam.delete_role().role_name(role).send().await.unwrap();
            json!({"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": role, "Path": path, "AssumeRolePolicyDocument": trust,
                "Policies": policies, "ManagedPolicyArns": managed, "Tags": tags,
            }}}})
        });
        let create = aws_sdk_cloudformation::Client::new(&self.sdk_config(&runtime))
            .create_stack()
            .stack_name(stack)
            .template_body(template.to_string())
            .send();
        let created = runtime.block_on(create).expect("moto creates the stack");
        created.stack_id().unwrap().to_string()
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

impl Moto {
    /// Credentials of a role session in `account` (STS AssumeRole): moto serves requests signed
    /// with them from that account, as AWS would. (access key, secret key, session token)
    pub fn credentials_in(&self, account: &str) -> (String, String, String) {
        use std::io::{Read, Write};
        let body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName=irsa-migrate-test&RoleArn=arn%3Aaws%3Aiam%3A%3A{account}%3Arole%2Fcross-account"
        );
        let address = self.endpoint.trim_start_matches("http://");
        let ask = || -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(address)?;
            write!(
                stream,
                "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20261128/eu-west-1/sts/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        };
        // The first request after the port opens may be reset while moto still starts its
        // workers (seen with several servers starting at once on a loaded machine).
        let deadline = Instant::now() + Duration::from_secs(60);
        let answer = loop {
            match ask() {
                Ok(answer) if !answer.is_empty() => break answer,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                result => panic!("moto does not answer STS within 60 s: {result:?}"),
            }
        };
        let field = |name: &str| {
            let start = answer
                .find(&format!("<{name}>"))
                .unwrap_or_else(|| panic!("no {name} in {answer}"))
                + name.len()
                + 2;
            let end = answer[start..].find('<').expect("a closing tag") + start;
            answer[start..end].to_string()
        };
        (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
