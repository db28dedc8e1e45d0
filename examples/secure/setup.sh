#!/bin/sh
# One role per application: myapp's agent may read its own production
# config and nothing else, and write only its own service registrations
# and its fleet status (the status block's key).
# Run once against a fresh cluster, as an operator:
#
#   ROOT_PASSWORD=... sh setup.sh
#
# TEND names the tend binary (default: tend in PATH); TEND_ENDPOINTS the
# store (default 127.0.0.1:2379). The agent's password is read from
# myapp.password next to this script.
set -eu
tend=${TEND:-tend}
here=$(dirname "$0")
: "${ROOT_PASSWORD:?set ROOT_PASSWORD to the password root will have}"

$tend user add root --new-user-password "$ROOT_PASSWORD"
$tend role add myapp-production
$tend role grant-permission myapp-production read /myapp/production/ --prefix
$tend role grant-permission myapp-production readwrite /services/myapp/ --prefix
$tend role grant-permission myapp-production write /tend/fleet/myapp/ --prefix
$tend user add myapp --new-user-password "$(cat "$here/myapp.password")"
$tend user grant-role myapp myapp-production
$tend auth enable
