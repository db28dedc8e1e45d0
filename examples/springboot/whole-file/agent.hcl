# tend agent for the Spring Boot example, pattern 1: the key
# /myapp/production/config holds a whole application.yml, written out
# byte for byte. Start it from examples/springboot (see ../README.md):
#
#   bin/tend agent --config whole-file/agent.hcl

store {
  endpoints = ["http://127.0.0.1:2379"]
}

template "application-yml" {
  source      = "application.yml.tmpl"
  destination = "application.yml"
  perms       = "0640"
  # Until the key exists, keep waiting rather than write an empty file.
  error_on_missing_key = true
  check       = ["../bin/app", "--check", "--config", "{{ .path }}"]
  on_change   = ["restart-app"]
}

hook "restart-app" {
  restart {
    process = "app"
  }
}

process "app" {
  command      = ["./bin/app", "--config", "whole-file/application.yml"]
  dir          = ".."
  kill_timeout = "10s"
}
