from core.process import exit_after
from devstack.cli import main

exit_after(main())
