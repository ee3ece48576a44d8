from .local_visualizer import QueryPoseVisualizer

__all__ = ['QueryPoseVisualizer']
