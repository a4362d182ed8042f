/**
 * Benchmark data: databases that look like an application's, generated with python3's
 * sqlite3 module (a separate SQLite, in another process, only to write the file).
 *
 * - `several`: four tables of comparable size (users, posts, comments, events), text
 *   columns from a Zipf-distributed vocabulary, two indexes each; compresses about 3-4x.
 * - `one`: a single `docs` table with three indexes holding nearly everything, beside a
 *   small users table: the case a per-table parallel check cannot split.
 *
 * @module
 */

const _SCRIPT = `
import os, random, sqlite3, string, sys
path, target, shape = sys.argv[1], int(sys.argv[2]) * 1024 * 1024, sys.argv[3]
random.seed(42)
vocab = [''.join(random.choice(string.ascii_lowercase) for _ in range(random.randint(2, 9))) for _ in range(3000)]
def zipf(n, s):
    cum, total = [], 0.0
    for i in range(n):
        total += 1.0 / (i + 1) ** s
        cum.append(total)
    return cum
cum = zipf(len(vocab), 1.3)
def words(lo, hi):
    return " ".join(random.choices(vocab, cum_weights=cum, k=random.randint(lo, hi)))
# Text repeats phrases, as real text repeats word sequences: that is what LZ compressors find.
phrases = [words(2, 6) for _ in range(2000)]
pcum = zipf(len(phrases), 0.9)
def text(lo, hi):
    return " ".join(random.choices(phrases, cum_weights=pcum, k=max(1, random.randint(lo, hi) // 4)))
def day():
    return "2025-%02d-%02dT%02d:%02d:%02dZ" % (random.randint(1, 12), random.randint(1, 28), random.randint(0, 23), random.randint(0, 59), random.randint(0, 59))
db = sqlite3.connect(path)
db.execute("PRAGMA journal_mode=DELETE")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA cache_size=-200000")
db.executescript("""
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, country TEXT, bio TEXT, created TEXT);
CREATE INDEX users_country ON users(country, created);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT, body TEXT, created TEXT);
CREATE INDEX posts_user ON posts(user_id, created);
CREATE INDEX posts_title ON posts(title);
CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL, user_id INTEGER NOT NULL, body TEXT, created TEXT);
CREATE INDEX comments_post ON comments(post_id, created);
CREATE INDEX comments_user ON comments(user_id);
CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER, kind TEXT NOT NULL, payload TEXT, at TEXT);
CREATE INDEX events_user ON events(user_id, at);
CREATE INDEX events_kind ON events(kind, at);
CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, author TEXT, tag TEXT, score INTEGER, created TEXT);
CREATE INDEX docs_title ON docs(title);
CREATE INDEX docs_tag_score ON docs(tag, score);
CREATE INDEX docs_author ON docs(author, created);
""")
kinds = ["login", "logout", "view", "click", "purchase", "refund", "signup", "error"]
countries = vocab[:60]
n = 0
while os.path.getsize(path) < target:
    for _ in range(2000):
        n += 1
        if shape == "one":
            if n % 50 == 0:
                db.execute("INSERT INTO users (email, name, country, bio, created) VALUES (?, ?, ?, ?, ?)",
                           ("u%d@%s.example" % (n, random.choice(vocab)), text(2, 3), random.choice(countries), text(5, 20), day()))
            db.execute("INSERT INTO docs (title, body, author, tag, score, created) VALUES (?, ?, ?, ?, ?, ?)",
                       (text(4, 10), text(30, 120), text(2, 2), random.choice(countries), random.randint(0, 10**6), day()))
            continue
        db.execute("INSERT INTO users (email, name, country, bio, created) VALUES (?, ?, ?, ?, ?)",
                   ("u%d@%s.example" % (n, random.choice(vocab)), text(2, 3), random.choice(countries), text(20, 60), day()))
        db.execute("INSERT INTO posts (user_id, title, body, created) VALUES (?, ?, ?, ?)",
                   (random.randint(1, n), text(4, 10), text(15, 50), day()))
        db.execute("INSERT INTO comments (post_id, user_id, body, created) VALUES (?, ?, ?, ?)",
                   (random.randint(1, n), random.randint(1, n), text(20, 60), day()))
        db.execute("INSERT INTO events (user_id, kind, payload, at) VALUES (?, ?, ?, ?)",
                   (random.randint(1, n), random.choice(kinds), '{"ip":"10.%d.%d.%d","ua":"%s"}' % (random.randint(0, 255), random.randint(0, 255), random.randint(0, 255), text(6, 25)), day()))
    db.commit()
db.close()
print(n)
`;

/** Which database {@link makeAppDatabase} makes. */
export type Shape = "several" | "one";

/** Generates (once: kept when it exists) an application-like database of about `mib` MiB at `path`. */
export async function makeAppDatabase(path: string, mib: number, shape: Shape): Promise<void> {
  try {
    await Deno.stat(path);
    return;
  } catch { /* generate it */ }
  console.error(`generating a ~${mib} MiB "${shape}" database at ${path} (kept for later runs)...`);
  const out = await new Deno.Command("python3", {
    args: ["-c", _SCRIPT, `${path}.tmp`, String(mib), shape],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`generating ${path} failed: ${new TextDecoder().decode(out.stderr)}`);
  await Deno.rename(`${path}.tmp`, path);
}
