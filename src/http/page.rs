//! A minimal upload page for people with a browser: a multipart form posted to `/push/...`,
//! with the API token (if any) sent as `Authorization: Bearer`.

use axum::response::Html;

pub async fn index() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hoist</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}input{margin:.3em 0}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}</style>
</head><body>
<h1>hoist</h1>
<p>Push an image archive (<code>docker save</code>, <code>podman save</code>, OCI archive; plain, gzip, zstd, xz or bzip2) into the registry.</p>
<form id="f">
<label>Repository[:tag] (empty: use the names in the archive)<br><input id="ref" size="50" placeholder="team/app:1.0"></label><br>
<label>Archive<br><input type="file" id="file" required></label><br>
<label>Token (if hoist asks for one; sent as <code>Authorization: Bearer</code>, kept nowhere)<br><input id="token" type="password" size="50" autocomplete="off"></label><br>
<button>Push</button>
</form>
<pre id="out"></pre>
<script>
document.getElementById('f').onsubmit = async (ev) => {
  ev.preventDefault();
  const ref = document.getElementById('ref').value.trim();
  const data = new FormData();
  data.append('file', document.getElementById('file').files[0]);
  const out = document.getElementById('out');
  out.textContent = 'pushing...';
  const token = document.getElementById('token').value.trim();
  const headers = token ? {'Authorization': 'Bearer ' + token} : {};
  const resp = await fetch(ref ? '/push/' + ref : '/push', {method: 'POST', body: data, headers});
  out.textContent = resp.status + '\n' + JSON.stringify(await resp.json(), null, 2);
};
</script>
</body></html>
"#;
