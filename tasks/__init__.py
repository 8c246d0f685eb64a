"""lute-kernel Task modules: one module per family; every ``Task`` subclass here is registered."""
