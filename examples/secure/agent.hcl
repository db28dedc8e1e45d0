# tend agent for myapp, authenticated as the user "myapp" (see setup.sh):
# it can read /myapp/production/ and write /services/myapp/ and
# /tend/fleet/myapp/, nothing else.
#
#   bin/tend agent --config agent.hcl

store {
  endpoints     = ["http://127.0.0.1:2379"]
  username      = "myapp"
  password_file = "myapp.password" # relative to this file; keep it 0600
}

template "application-yml" {
  source      = "application.yml.tmpl"
  destination = "application.yml"
  perms       = "0640"
}

# The host announces itself under the prefix its role may write.
service "myapp" {
  key   = "/services/myapp/{{ getenv \"MYAPP_HOST\" hostname }}"
  value = "127.0.0.1:8080"
  ttl   = "10s"
}

# What the agent did, for tend fleet status --prefix /tend/fleet/myapp/:
# under the prefix its role may write (the default key, /tend/fleet/<host>,
# would need write on every host's entry).
status {
  key = "/tend/fleet/myapp/{{ getenv \"MYAPP_HOST\" hostname }}"
  ttl = "30s"
}
