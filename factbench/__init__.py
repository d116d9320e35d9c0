"""factbench: did this fine-tune make the model forget facts it knew, and how many new facts did it learn?"""

__version__ = "0.1.0"
