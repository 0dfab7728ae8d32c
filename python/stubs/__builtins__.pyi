# Makes the session globals of RG.PYEXECUTE (gears.pyi) global for mypy, as they are at run time.
from gears import *
from gears import GearsBuilder as GearsBuilder, GB as GB
import redisgears as redisgears
