from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor


class PartwiseLinear(nn.Module):
    """One non-shared linear per part, outputs in dataset keypoint order.

    Equivalent to ``M`` separate ``Linear(d_p -> dim_per_keypoint * |part|)``
    layers (each part's outputs see only that part's query), computed in one
    einsum: keypoint ``k`` reads the query of its part. ``weight[k]`` and
    ``bias[k]`` are keypoint ``k``'s rows of its part's linear.

    Args:
        part_groups (list[list[int]]): Keypoint indices of each part.
        part_dim (int): Input dimension d_p.
        dim_per_keypoint (int): Outputs per keypoint. Defaults to 2.
        normalize_input (bool): Divide the input by its L2 norm first, as
            RLE's regression layer does. Defaults to False.
        init_gain (float, optional): Xavier-uniform gain of the weights;
            ``None`` keeps the default init of ``nn.Linear``.
    """

    def __init__(self,
                 part_groups: Sequence[Sequence[int]],
                 part_dim: int,
                 dim_per_keypoint: int = 2,
                 normalize_input: bool = False,
                 init_gain: Optional[float] = None) -> None:
        super().__init__()
        num_keypoints = sum(len(g) for g in part_groups)
        part_of_keypoint = torch.empty(num_keypoints, dtype=torch.long)
        for part, group in enumerate(part_groups):
            part_of_keypoint[list(group)] = part
        self.register_buffer('part_of_keypoint', part_of_keypoint, False)
        self.normalize_input = normalize_input
        self.weight = nn.Parameter(
            torch.empty(num_keypoints, part_dim, dim_per_keypoint))
        self.bias = nn.Parameter(torch.zeros(num_keypoints, dim_per_keypoint))
        for k in range(num_keypoints):
            if init_gain is None:
                nn.init.kaiming_uniform_(self.weight[k].T, a=5**0.5)
            else:
                nn.init.xavier_uniform_(self.weight[k].T, gain=init_gain)

    def forward(self, part_queries: Tensor) -> Tensor:
        """Map (n, M, d_p) part queries to (n, K, dim_per_keypoint)."""
        if self.normalize_input:
            part_queries = part_queries / part_queries.norm(
                dim=-1, keepdim=True).clamp_min(1e-6)
        per_keypoint = part_queries[:, self.part_of_keypoint]
        return torch.einsum('nkd,kdo->nko', per_keypoint,
                            self.weight) + self.bias
