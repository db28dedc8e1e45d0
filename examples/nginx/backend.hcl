# tend agent for one web host of the nginx example: register the backend
# running on this host under /services/web/, where the nginx host's agent
# (agent.hcl) renders it into the upstream, and keep it registered only
# while its /health answers. Name and port come from the environment (the
# host name and 9001 when unset):
#
#   BACKEND_NAME=web-1 BACKEND_PORT=9001 bin/tend agent --config backend.hcl
#
# On a real host the key would end in {{ hostname }} and the address would
# be the host's own.

store {
  endpoints = ["http://127.0.0.1:2379"]
}

service "web" {
  key   = "/services/web/{{ getenv \"BACKEND_NAME\" hostname }}"
  value = "{\"address\":\"127.0.0.1\",\"port\":{{ getenv \"BACKEND_PORT\" \"9001\" }}}"
  # The agent keeps the lease alive. If the agent dies, the key goes when
  # the lease expires, at most 5s later; a clean stop revokes it at once.
  ttl = "5s"
  # Registered only while the backend answers; a failed check revokes the
  # lease at once, and the next passing check registers the host again.
  check {
    http     = "http://127.0.0.1:{{ getenv \"BACKEND_PORT\" \"9001\" }}/health"
    interval = "1s"
    timeout  = "1s"
  }
}
