#!/usr/bin/env python3
"""The original Python tutorial's pipeline, written plainly with boto3: the
yardstick scripts/bench-pipeline.sh times the CLI against.

    seed-pipeline.py NAME BUCKET KEY

Creates the role NAME-role (trusting Redshift), the policy NAME-s3-read
(read on BUCKET) attached to it, the cluster NAME (waited on until
available), the table `sales`; COPYs s3://BUCKET/KEY into it, counts the
rows, then deletes the cluster (waited on), the policy and the role. Prints
the row count.

SQL goes through the Redshift Data API, each statement polled every 50 ms
until it ends: a tighter loop than the tutorial's readers would write, so
that the yardstick is not slowed by its polling.
"""
import json
import sys
import time

import boto3

name, bucket, key = sys.argv[1:4]
iam = boto3.client("iam")
redshift = boto3.client("redshift")
data = boto3.client("redshift-data")

# Step 1: the role Redshift assumes.
trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
role_arn = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

# Step 2: the policy that lets it read the bucket.
read = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }],
}
policy_arn = iam.create_policy(PolicyName=f"{name}-s3-read", PolicyDocument=json.dumps(read))["Policy"]["Arn"]
iam.attach_role_policy(RoleName=f"{name}-role", PolicyArn=policy_arn)

# Step 3: the cluster.
redshift.create_cluster(
    ClusterIdentifier=name, ClusterType="single-node", NodeType="ra3.large", DBName="dev",
    MasterUsername="awsuser", MasterUserPassword="Seed-Passw0rd", IamRoles=[role_arn],
)
redshift.get_waiter("cluster_available").wait(ClusterIdentifier=name)


def sql(statement):
    """Runs one statement through the Data API and waits for it to end."""
    sid = data.execute_statement(ClusterIdentifier=name, Database="dev", DbUser="awsuser", Sql=statement)["Id"]
    while True:
        d = data.describe_statement(Id=sid)
        if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(0.05)
    if d["Status"] != "FINISHED":
        sys.exit(f"{d['Status']}: {d.get('Error')}")
    return sid


# Step 4: the table. Step 5: COPY, and count.
sql("CREATE TABLE IF NOT EXISTS sales (sale_id BIGINT NOT NULL, sold_on DATE, region VARCHAR(16), "
    "product VARCHAR(32), quantity INTEGER, unit_price DECIMAL(10,2))")
sql(f"COPY sales FROM 's3://{bucket}/{key}' IAM_ROLE '{role_arn}' CSV IGNOREHEADER 1")
count = data.get_statement_result(Id=sql("SELECT COUNT(*) FROM sales"))["Records"][0][0]["longValue"]

# Step 6: teardown.
redshift.delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True)
redshift.get_waiter("cluster_deleted").wait(ClusterIdentifier=name)
iam.detach_role_policy(RoleName=f"{name}-role", PolicyArn=policy_arn)
iam.delete_policy(PolicyArn=policy_arn)
iam.delete_role(RoleName=f"{name}-role")
print(count)
