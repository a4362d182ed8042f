/**
 * The commented template config that `sqlbk blueprint` prints.
 *
 * @module
 */

import { DEFAULTS } from "./config.ts";
import { LEVELS } from "./codecs/levels.ts";

/**
 * The template: every key with its default and what it does. It parses as a valid config
 * once `source_path` is set.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("sqlbk.toml", blueprint());
 * ```
 */
export function blueprint(): string {
  return `# sqlbk configuration (TOML).
# Relative paths are relative to the working directory of the sqlbk process;
# absolute paths are safer for cron and systemd.

# The live SQLite database to back up (required).
source_path = "/srv/app/data/app.db"

# Where compressed backups are published, as
# <stem>-<YYYY-MM-DDTHH-MM-SSZ>-<strategy>.bck.gz plus a hidden .<name>.sha256 sidecar.
# Created when its parent directory exists. Default: "${DEFAULTS.backup_dir}".
backup_dir = "/srv/app/backups"

# "online": SQLite's Online Backup API, a few pages at a time with a pause between
#           steps. In WAL mode writers are never blocked.
# "vacuum": VACUUM INTO, one fast pass producing a compact, defragmented copy.
# Default: "${DEFAULTS.strategy}".
strategy = "${DEFAULTS.strategy}"

# online only: pages copied per step (at least 1). Default: ${DEFAULTS.pages_per_step}.
pages_per_step = ${DEFAULTS.pages_per_step}

# online only: pause between steps, as a Go duration ("10ms", "0s" for none).
# Default: "${DEFAULTS.sleep_interval}".
sleep_interval = "${DEFAULTS.sleep_interval}"

# Give up on a backup that takes longer than this ("0s": no limit). In rollback-journal
# mode an online backup restarts whenever the app writes; this bounds it.
# Default: "${DEFAULTS.max_duration}".
max_duration = "${DEFAULTS.max_duration}"

# After a successful backup, keep only this many newest backups of this database
# (with their sidecars); 0 keeps all. Default: ${DEFAULTS.keep_last}.
keep_last = ${DEFAULTS.keep_last}

# "gzip" (the Go tools read only gzip) or "zstd" (faster and smaller, named .bck.zst).
# Default: "${DEFAULTS.compression}".
compression = "${DEFAULTS.compression}"

# The codec's level: gzip 1 (fastest) to 9 (smallest), default ${DEFAULTS.compression_level};
# zstd 1 (fastest) to 19 (smallest), default ${LEVELS.zstd.default}. Unset: the codec's default.
# compression_level = ${DEFAULTS.compression_level}

# Check every snapshot before it is published: "quick" (PRAGMA quick_check: b-trees and
# page accounting), "full" (PRAGMA integrity_check: also every index entry; slower on large
# indexed databases) or "none". A snapshot that fails is never published, and retention
# does not run; after an unchecked ("none") backup retention does not run either.
# Default: "${DEFAULTS.check}".
check = "${DEFAULTS.check}"

# "sqlbk status" calls a database stale when its newest backup is older than this
# (Go duration; there is no "d" unit). Default: "${DEFAULTS.max_age}".
max_age = "${DEFAULTS.max_age}"

# Monitoring (see "Monitoring" in the README); each is off unless set.
# A Prometheus textfile that backup, pull, run and status update atomically:
# metrics_file = "/var/lib/prometheus/node-exporter/sqlbk.prom"
# A heartbeat URL pinged after each run (URL on success, URL/fail on failure):
# heartbeat_url = "https://hc-ping.com/<uuid>"
# SQL probes run read-only on every verified copy (verify, pull, restore); each must
# return one row whose first value is true:
# probes = ["SELECT count(*) > 0 FROM users"]

# Several databases: one table each, with any of the keys above; keys at the top level
# act as defaults for every table. When [databases.*] tables exist, source_path must be
# set inside them, not at the top level.
#
# [databases.app]
# source_path = "/srv/app/data/app.db"
#
# [databases.auth]
# source_path = "/srv/app/data/auth.db"
# strategy = "vacuum"

# The pull client ("sqlbk pull --config FILE") reads its settings from a [pull] table;
# command-line flags override them. On a pull host, a config may hold only this table.
#
# [pull]
# # The server (a name, an address, or a Host alias from ~/.ssh/config). Required.
# host = "db1.example.com"
# # SSH port. Default: ~/.ssh/config's Port, else 22.
# port = 22
# # Login user. Default: ~/.ssh/config's User, else the local user name.
# user = "backup"
# # Private key (ssh -i). Default: OpenSSH's own: ssh-agent, then the ssh config's
# # IdentityFile, else ~/.ssh/id_*.
# identity_file = "/home/backup/.ssh/id_ed25519"
# # Directory on the server holding the backups (its backup_dir). Default: the login directory.
# remote_dir = "/srv/app/backups"
# # Local directory receiving them (created when missing). Default: ".".
# local_dir = "/srv/pulled/app"
# # known_hosts file the server's host key is checked against. Default: ~/.ssh/known_hosts.
# known_hosts = "/home/backup/.ssh/known_hosts"
# # Newest local backups kept per database; the newest verified copy is never deleted.
# # 0 keeps all. Default: 0.
# keep_last = 14
# # Databases to pull. Default: the newest backup of every database found.
# databases = ["app", "auth"]
# # The OpenSSH client to run ($SQLBK_SSH wins over it). Default: ssh from PATH.
# ssh_command = "/usr/bin/ssh"
# # An ssh config file for these pulls (ssh -F; ProxyJump, keys, ports). Default: ~/.ssh/config.
# ssh_config = "/etc/sqlbk/ssh_config"
# # More ssh -o settings. Default: none.
# ssh_options = ["ProxyJump=bastion.example.com"]
`;
}
