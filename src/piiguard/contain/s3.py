"""S3: make public bucket policies private.

Each bucket whose policy allows everyone (``Principal: *`` without a condition) gets the same policy
without those statements (or no policy, if nothing else is left). Objects, keys and the other
statements are untouched; undo puts the previous policy document back. Public ACL grants are not
changed (the plan names them; remove them by hand). Verified by re-running the anonymous listing and
read probes and the policy check. Needs ``s3:GetBucketPolicy``, ``s3:PutBucketPolicy`` and
``s3:DeleteBucketPolicy``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from piiguard.checks.s3 import S3Target, policy_of, public_statements
from piiguard.contain.base import Containment, Holdings, Plan, containments
from piiguard.model import Finding, Store


@containments.register("s3")
class S3Containment(Containment):
    """Remove the public statements from bucket policies."""

    engine = "s3"
    triggers = frozenset({"s3.anonymous-list", "s3.anonymous-get", "s3.public-policy"})

    def plan(self, store: Store, findings: Sequence[Finding], holdings: Holdings) -> Plan | None:
        if not self.triggered(findings):
            return None
        target = S3Target(store, timeout=10)
        previous, steps = {}, []
        for bucket in target.buckets:
            policy = policy_of(target, bucket)
            public = public_statements(policy)
            if not public:
                continue
            previous[bucket] = policy
            left = len(_statements(policy)) - len(public)
            steps.append(f"{bucket}: remove {len(public)} public statement(s)"
                         + (f", keep {left}" if left else " (delete the policy: nothing else is in it)"))
        if not previous:
            return None
        return Plan("s3", store.name, steps=tuple(steps),
                    undo=tuple(f"{b}: put the previous policy back" for b in previous),
                    verify=("s3.anonymous-list", "s3.anonymous-get", "s3.public-policy"),
                    data={"previous": previous})

    def apply(self, store: Store, plan: Plan) -> None:
        target = S3Target(store, timeout=30)
        for bucket, policy in plan.data["previous"].items():
            public = public_statements(policy)
            kept = [s for s in _statements(policy) if s not in public]
            if kept:
                target.call("put_bucket_policy", Bucket=bucket, Policy=json.dumps({**policy, "Statement": kept}))
            else:
                target.call("delete_bucket_policy", Bucket=bucket)

    def undo(self, store: Store, plan: Plan) -> None:
        target = S3Target(store, timeout=30)
        for bucket, policy in plan.data["previous"].items():
            target.call("put_bucket_policy", Bucket=bucket, Policy=json.dumps(policy))


def _statements(policy: dict[str, object]) -> list[object]:
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]
