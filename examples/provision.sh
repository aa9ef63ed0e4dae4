#!/bin/sh
# An example provisioning program for `ironmesh worker --exec examples/provision.sh`.
#
# The job arrives as one JSON object on stdin (never in argv or the environment):
#   {"job_id":…,"request_id":…,"customer_id":…,"plan":"starter","priority_tier":"PRIORITY_TIER_STANDARD",
#    "attempt":1,"credentials":{"api_token":{"token":"…"}}}
# `credentials` holds what the customer stored with SubmitCredentials, by kind, decrypted for
# this job only (it is {} when they stored none). Never echo it to stdout or stderr: stdout
# becomes the request's result and stderr its last error.
# Exit 0 and print a JSON object of strings: the request SUCCEEDS with it as its result.
# Exit 75 (EX_TEMPFAIL): a temporary failure, retried with backoff.
# Any other exit: a permanent failure; the tail of stderr becomes the request's last error.
set -eu
job=$(cat)
field() { printf '%s' "$job" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
request=$(field request_id)
plan=$(field plan)
case "$plan" in
  starter|professional|enterprise) ;;
  *) echo "unknown plan: $plan" >&2; exit 2 ;;
esac
# A real program would create the tenant here (call a cloud API with the job's credentials).
echo "provisioning $plan for request $request" >&2
printf '{"tenant_id":"tenant-%s","plan":"%s","endpoint":"https://%s.tenants.example.com"}\n' \
  "$request" "$plan" "$(printf '%s' "$request" | cut -c1-8)"
