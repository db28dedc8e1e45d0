#!/bin/sh
# Seed data for the Spring Boot example: one tree of properties per
# environment (pattern 2) and one whole application.yml under a single key
# (pattern 1). TEND names the tend binary (default: tend in PATH);
# TEND_ENDPOINTS the store (default 127.0.0.1:2379).
set -eu
tend=${TEND:-tend}
here=$(dirname "$0")

port=8081
for env in dev qa staging production; do
	p=/myapp/$env/config
	$tend put $p/server/port $port
	$tend put $p/spring/application/name myapp
	$tend put $p/spring/profiles/active $env
	$tend put $p/spring/datasource/url "jdbc:postgresql://db.$env.example.com:5432/myapp"
	$tend put $p/spring/datasource/username myapp
	$tend put $p/app/hosts/0 "a.$env.example.com"
	$tend put $p/app/hosts/1 "b.$env.example.com"
	$tend put $p/app/feature/new-checkout false
	$tend put $p/logging/level/root INFO
	port=$((port + 1))
done
$tend put /myapp/dev/config/logging/level/root DEBUG

# Pattern 1: the whole file under one key, byte for byte.
$tend put /myapp/production/config < "$here/whole-file/application.example.yml"
