# Vault policy of the accuinsight-rpa jobs, for the KV v2 mount "trial" (RPA_VAULT_KV_MOUNT).
# Load it with:  vault policy write accuinsight-rpa k8s/vault-policy.hcl
# KV v2 serves the secrets under <mount>/data/ and the listings under <mount>/metadata/, so a
# different mount name means changing the first segment of every path below.

# Read every record: password/, modeler/ and mcm/.
path "trial/data/*" {
  capabilities = ["read"]
}

# List the account names in each folder.
path "trial/metadata/*" {
  capabilities = ["list"]
}

# The end-of-service job stores rotated passwords: the only records the jobs write.
# "create" is for a record written with check-and-set version 0, "update" for every later one.
path "trial/data/password/*" {
  capabilities = ["read", "create", "update"]
}
