# Varnish as scripts/bench runs it: the equivalent of scripts/peers/ringfront.toml.
# malloc storage of 256 MiB and one thread pool (varnishd flags in
# scripts/bench; taskset pins the process to core 1), a fallback director per
# origin group, and a retry on the secondary for a failed or failover-status
# fetch, so every request starts at the primary again.
# {{...}} placeholders are filled in by scripts/bench.
vcl 4.1;

import directors;

backend origin { .host = "127.0.0.1"; .port = "{{ORIGIN_PORT}}"; .connect_timeout = 10s; .first_byte_timeout = 30s; }
backend primary { .host = "127.0.0.1"; .port = "{{PRIMARY_PORT}}"; .connect_timeout = 10s; .first_byte_timeout = 30s; }
backend dead { .host = "127.0.0.1"; .port = "{{DEAD_PORT}}"; .connect_timeout = 10s; .first_byte_timeout = 30s; }

sub vcl_init {
    new site = directors.fallback();
    site.add_backend(primary);
    site.add_backend(origin);
    new refused = directors.fallback();
    refused.add_backend(dead);
    refused.add_backend(origin);
}

sub vcl_backend_fetch {
    if (bereq.url ~ "^/failover/") {
        if (bereq.retries == 0) { set bereq.backend = site.backend(); } else { set bereq.backend = origin; }
    } elsif (bereq.url ~ "^/refused/") {
        if (bereq.retries == 0) { set bereq.backend = refused.backend(); } else { set bereq.backend = origin; }
    } else {
        set bereq.backend = origin;
    }
}

sub vcl_backend_response {
    # Compression: Varnish gzips the object once when storing it
    # (beresp.do_gzip; http_gzip_support is on by default) and gunzips for
    # viewers that do not accept gzip.
    if (bereq.url ~ "^/text/" && beresp.http.Content-Type ~ "^text/") {
        set beresp.do_gzip = true;
    }
    if (bereq.retries == 0 && bereq.url ~ "^/(failover|refused)/" &&
        (beresp.status == 500 || beresp.status == 502 || beresp.status == 503 || beresp.status == 504)) {
        return (retry);
    }
}

sub vcl_backend_error {
    if (bereq.retries == 0 && bereq.url ~ "^/(failover|refused)/") {
        return (retry);
    }
}
