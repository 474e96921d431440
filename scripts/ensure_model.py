"""Make sure a model bundle exists at MODEL_URI (default <repo>/instance/model).

Called by scripts/serve.sh before gunicorn starts: if the bundle is missing (or cannot be
loaded), a small default bundle is trained (a few minutes on 2 cores) and written there;
if a loadable bundle is present nothing happens.
"""

from __future__ import annotations

from twin.forecast.defaults import default_model_uri, ensure_bundle


def main() -> int:
    import torch

    torch.set_num_threads(2)
    ensure_bundle(default_model_uri(), log=lambda m: print(f"ensure_model: {m}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
