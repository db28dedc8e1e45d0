# tend agent for the nginx example: render nginx's upstream from the hosts
# registered under /services/web/, check it with `nginx -t`, and reload
# nginx. Paths, and the folder the check runs in, are relative to this file;
# hooks run where the agent was started, so start it from this folder
# (see README.md):
#
#   bin/tend agent --config agent.hcl

store {
  endpoints = ["http://127.0.0.1:2379"]
}

# Hosts come and go in bursts (a deploy): settle for 200ms, at most 1s.
wait {
  min = "200ms"
  max = "1s"
}

template "upstream" {
  source      = "upstream.conf.tmpl"
  destination = "upstream.conf"
  # nginx -t on nginx.conf with the candidate in place of upstream.conf.
  check       = ["sh", "check-upstream.sh", "{{ .path }}"]
  on_change   = ["reload-nginx"]
}

# nginx -s reload: the master re-reads its configuration and replaces its
# workers gracefully; requests in flight finish. Before nginx has written
# its pid file (the first render starts it) there is nothing to reload.
hook "reload-nginx" {
  exec {
    command = ["sh", "-c", "test ! -s tmp/nginx.pid || exec nginx -e stderr -p \"$PWD/\" -c nginx.conf -s reload"]
    dir     = "."
    timeout = "10s"
  }
}

# The agent runs nginx itself here, so the example is one command; on a
# server systemd would, and only the template and the hook above remain.
process "nginx" {
  command      = ["nginx", "-e", "stderr", "-p", "./", "-c", "nginx.conf", "-g", "daemon off;"]
  dir          = "."
  kill_signal  = "SIGQUIT"
  kill_timeout = "10s"
}
