# tend agent for the Spring Boot example, pattern 2: a tree of keys,
# one per property, rendered as nested YAML.
#
#   /myapp/production/config/server/port          8081
#   /myapp/production/config/spring/datasource/url jdbc:postgresql://...
#   /myapp/production/config/app/hosts/0           a.example.com
#
# APP_ENV (dev, qa, staging, production; default production) picks the
# prefix. Paths in this file, and the folder the check command runs in, are
# relative to this file (see README.md):
#
#   bin/tend agent --config agent.hcl

store {
  endpoints = ["http://127.0.0.1:2379"]
}

# Let a burst of puts settle before rendering, but never wait more than 2s.
wait {
  min = "300ms"
  max = "2s"
}

template "application-yml" {
  source      = "application.yml.tmpl"
  destination = "application.yml"
  perms       = "0640"
  backup      = true
  # The stand-in app refuses a malformed file, as Spring Boot does; never
  # swap one in.
  check       = ["./bin/app", "--check", "--config", "{{ .path }}"]
  on_change   = ["restart-app"]
}

# Spring Boot reads application.yml once, at start: restart it on a change.
hook "restart-app" {
  restart {
    process = "app"
  }
}

# Publish which revision application.yml is at, and how the last change
# went, under /tend/fleet/<hostname>: tend fleet status lists every host
# (tend fleet status --revision N --wait 2m waits for a rollout).
status {}

process "app" {
  # Built by: go build -o bin/app ./app
  command      = ["./bin/app", "--config", "application.yml"]
  dir          = "."
  kill_signal  = "SIGTERM"
  kill_timeout = "10s"
}
