#!/bin/sh
# check-upstream.sh CANDIDATE: run `nginx -t` on this folder's nginx.conf
# with CANDIDATE in place of upstream.conf, so tend never swaps in an
# upstream file nginx would refuse. tend's template check runs it.
set -eu
cand=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/tmp"
sed -e "s|include upstream.conf;|include $cand;|" \
    -e "s|include listen.conf;|listen 127.0.0.1:1;|" \
    "$here/nginx.conf" > "$dir/nginx.conf"
nginx -t -q -e stderr -p "$dir/" -c nginx.conf
