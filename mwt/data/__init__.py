"""Datasets: the built-in ones and image folders, in memory or streamed, with one batching API."""

from mwt.data.builtin import DEBIAN_FASHION_MNIST, dataset_info, default_data_dir
from mwt.data.classes import resolve_classes
from mwt.data.source import Dataset, DataSource, load_dataset, load_named, load_split
from mwt.data.split import AnySplit, FileSplit, Split, augment_batch, batches, batches_in_order, classes_missing
from mwt.registry import DATASETS, DatasetInfo

__all__ = [
    "DATASETS", "DEBIAN_FASHION_MNIST", "AnySplit", "DataSource", "Dataset", "DatasetInfo", "FileSplit", "Split",
    "augment_batch", "batches", "batches_in_order", "classes_missing", "dataset_info", "default_data_dir", "load_dataset", "load_named",
    "load_split", "resolve_classes",
]
