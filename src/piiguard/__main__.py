from piiguard.cli import main

main()
