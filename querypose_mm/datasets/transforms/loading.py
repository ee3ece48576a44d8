"""Image loading that can skip a broken file in a long training run."""
from typing import Dict, Optional, Set

from mmengine.logging import MMLogger

from mmpose.datasets.transforms import LoadImage
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImage):
    """mmpose's :class:`LoadImage`, with a choice for files that fail.

    With ``skip_broken=False`` it is mmpose's ``LoadImage``: a missing,
    non-image or undecodable file raises an error that names the file. With
    ``skip_broken=True`` the file is logged as a warning (once per file and
    process, with the reason) and the sample is dropped by returning None,
    on which mmengine's ``BaseDataset`` draws another sample in training, so
    one bad file among 100k does not end a run.

    Keep ``skip_broken=False`` in evaluation pipelines: mmengine refuses
    None in test mode, and every image must be scored.

    Args:
        skip_broken (bool): Skip and log instead of raising. Defaults to
            False.
        **kwargs: :class:`LoadImage`'s arguments.
    """

    def __init__(self, skip_broken: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_broken = skip_broken
        self.skipped: Set[str] = set()

    def transform(self, results: Dict) -> Optional[Dict]:
        try:
            return super().transform(results)
        except Exception as error:
            if not self.skip_broken:
                raise
            path = results.get('img_path')
            if path not in self.skipped:
                self.skipped.add(path)
                MMLogger.get_current_instance().warning(
                    f'LoadImageOrSkip: skipped {path} '
                    f'({type(error).__name__}: {error}); '
                    f'{len(self.skipped)} file(s) skipped so far')
            return None

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'skip_broken={self.skip_broken})')
