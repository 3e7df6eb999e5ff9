"""Models kept in MLflow as ``--model``: ``runs:/RUN_ID/PATH`` and ``models:/NAME/VERSION``.

The file an MLflow URI names is downloaded to a temporary folder and then read like any
local model file, by the same safe loaders (:func:`robust.load_model`): nothing is
unpickled because it came from MLflow. ``runs:/`` names a run's artifact;
``models:/NAME/VERSION`` and ``models:/NAME@ALIAS`` a version of a registered model
whose source is a model file (what ``tracking.register_as`` registers). The tracking
server is MLflow's usual one: ``MLFLOW_TRACKING_URI``, else its local default.
"""

from __future__ import annotations

from pathlib import Path

from counterfeit.gan.errors import CheckpointError, reason

MODEL_SUFFIXES = (".pt2", ".pt", ".pth", ".ts", ".ckpt")


def fetch_model_file(uri: str, folder: str | Path) -> Path:
    """Download the model file ``uri`` names into ``folder``; returns its path.

    Raises:
        CheckpointError: the run, artifact, registered model or version does not exist,
            the tracking server cannot be reached, or the artifact is a folder that does
            not hold exactly one model file.
    """
    import mlflow
    from mlflow import MlflowClient

    source = uri
    try:
        if uri.startswith("models:/"):
            source = _version_source(MlflowClient(), uri)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(folder)))
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot fetch {uri} from MLflow: {reason(exc)}") from None
    if local.is_file():
        return local
    found = sorted(p for p in local.rglob("*") if p.suffix in MODEL_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "no model file"
        raise CheckpointError(
            f"{uri} is a folder holding {names}; name one model file (runs:/RUN_ID/models/NAME.pt2)."
        )
    return found[0]


def _version_source(client, uri: str) -> str:
    """The artifact URI behind ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``."""
    spec = uri.removeprefix("models:/")
    if "@" in spec:
        name, alias = spec.split("@", 1)
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, _, number = spec.partition("/")
        if not name or not number.isdigit():
            raise CheckpointError(
                f"{uri}: expected models:/NAME/VERSION (a number) or models:/NAME@ALIAS."
            )
        version = client.get_model_version(name, number)
    return version.source
