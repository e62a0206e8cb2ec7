"""Named subsets of a dataset that keep the file names and labels evaluators read: RobustBench's 5 000 ImageNet
test images. A dataset names its subsets in the registry (``register_dataset(subsets={name: function})``;
:meth:`~robustbench_labelaug.data.registry.DatasetSpec.make_subset`)."""

from __future__ import annotations

from torch.utils.data import Subset

from ..errors import UserError
from ..packages import package_folder


class NamedSubset(Subset):
    """``Subset`` that keeps the file names and labels evaluators read (ReaL, ImageNet-X)."""

    def filename(self, index: int) -> str:
        return self.dataset.filename(self.indices[index])

    @property
    def targets(self) -> list[int]:
        targets = self.dataset.targets
        return [int(targets[i]) for i in self.indices]


def robustbench_image_ids() -> list[str]:
    """RobustBench's 5 000 ImageNet test images as ``<wnid>/<file>``, in its order (classes mixed)."""
    folder = package_folder("robustbench")
    if folder is None:
        raise UserError("datasets subset 'robustbench' needs the robustbench package: pip install robustbench")
    ids_file = folder / "helper_files" / "imagenet_test_image_ids.txt"
    return [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]


def robustbench_imagenet_subset(dataset, ds_id: str, image_ids: list[str] | None = None) -> NamedSubset:
    """RobustBench's ImageNet test images (:func:`robustbench_image_ids`, in its order, which mixes the classes,
    so the first n cover many classes; ``image_ids`` replaces the list) out of a validation folder."""
    wanted = robustbench_image_ids() if image_ids is None else image_ids
    position = {dataset.filename(i): i for i in range(len(dataset))}
    missing = [w for w in wanted if w.split("/")[-1] not in position]
    if missing:
        raise UserError(f"dataset '{ds_id}' lacks {len(missing)} of RobustBench's {len(wanted)} test images (e.g. "
                        f"{missing[0]}): point data_dir at the full ImageNet validation set, or drop 'subset'")
    return NamedSubset(dataset, [position[w.split("/")[-1]] for w in wanted])
