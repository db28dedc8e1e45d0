# tend agent for the log-level example: change a logger's level in a
# running app, without a restart, through Spring Boot's actuator endpoint.
#
#   tend put /myapp/production/logging/com.example.orders DEBUG   # DEBUG lines appear
#   tend del /myapp/production/logging/com.example.orders         # back to inherited
#
# Each logger has a small template (a file holding its level, checked by
# check-level.sh so that a typo never reaches the app) and an HTTP hook that
# POSTs the level to /actuator/loggers/<logger> when the file changes; a
# missing key sends null, which resets the logger to inherit.
# Start the agent from this folder (see README.md):
#
#   bin/tend agent --config agent.hcl

store {
  endpoints = ["http://127.0.0.1:2379"]
}

template "level-root" {
  contents    = "{{ keyOrDefault \"/myapp/production/logging/ROOT\" \"\" | trim | upper }}"
  destination = "levels/ROOT"
  check       = ["sh", "check-level.sh", "{{ .path }}"]
  on_change   = ["level-root"]
}

hook "level-root" {
  http {
    method        = "POST"
    url           = "http://127.0.0.1:8080/actuator/loggers/ROOT"
    headers       = { "Content-Type" = "application/json" }
    body          = "{\"configuredLevel\": {{ with keyOrDefault \"/myapp/production/logging/ROOT\" \"\" | trim }}{{ toJson (upper .) }}{{ else }}null{{ end }}}"
    expect_status = [204]
    retries       = 20
    retry_wait    = "250ms"
  }
}

template "level-orders" {
  contents    = "{{ keyOrDefault \"/myapp/production/logging/com.example.orders\" \"\" | trim | upper }}"
  destination = "levels/com.example.orders"
  check       = ["sh", "check-level.sh", "{{ .path }}"]
  on_change   = ["level-orders"]
}

hook "level-orders" {
  http {
    method        = "POST"
    url           = "http://127.0.0.1:8080/actuator/loggers/com.example.orders"
    headers       = { "Content-Type" = "application/json" }
    body          = "{\"configuredLevel\": {{ with keyOrDefault \"/myapp/production/logging/com.example.orders\" \"\" | trim }}{{ toJson (upper .) }}{{ else }}null{{ end }}}"
    expect_status = [204]
    retries       = 20
    retry_wait    = "250ms"
  }
}

template "level-payments" {
  contents    = "{{ keyOrDefault \"/myapp/production/logging/com.example.payments\" \"\" | trim | upper }}"
  destination = "levels/com.example.payments"
  check       = ["sh", "check-level.sh", "{{ .path }}"]
  on_change   = ["level-payments"]
}

hook "level-payments" {
  http {
    method        = "POST"
    url           = "http://127.0.0.1:8080/actuator/loggers/com.example.payments"
    headers       = { "Content-Type" = "application/json" }
    body          = "{\"configuredLevel\": {{ with keyOrDefault \"/myapp/production/logging/com.example.payments\" \"\" | trim }}{{ toJson (upper .) }}{{ else }}null{{ end }}}"
    expect_status = [204]
    retries       = 20
    retry_wait    = "250ms"
  }
}

# The stand-in app. It starts at the levels in levels/ (--levels), so the
# levels survive a restart: the hooks fire only when a file changes. A real
# Spring Boot app would run as ["java", "-jar", "myapp.jar"] with
# management.endpoints.web.exposure.include=loggers, and take its starting
# levels from logging.level.* (render them into its application.yml).
process "app" {
  command = ["./bin/app", "--port", "8080", "--levels", "levels"]
  dir     = "."
}
