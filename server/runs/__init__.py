"""The run endpoints, `POST /prompt` and `POST /workflow/<model>/<name>`: the request envelope,
and a synchronous answer or a 202 job."""
