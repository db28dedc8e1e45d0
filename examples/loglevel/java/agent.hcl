# tend agent for the logback variant of the log-level example: render
# logback.xml from /myapp/production/logging/<logger> keys; logback itself
# notices the new file within a second (scan="true") and changes its levels
# without a restart, so no hook is needed. Start it from this folder after
# compiling Main.java into build/ (see ../README.md):
#
#   ../bin/tend agent --config agent.hcl

store {
  endpoints = ["http://127.0.0.1:2379"]
}

template "logback" {
  source      = "logback.xml.tmpl"
  destination = "logback.xml"
}

process "main" {
  command = [
    "java",
    "-cp", "/usr/share/java/slf4j-api.jar:/usr/share/java/logback-core.jar:/usr/share/java/logback-classic.jar:build",
    "-Dlogback.configurationFile=logback.xml",
    "Main", "200",
  ]
  dir = "."
}
