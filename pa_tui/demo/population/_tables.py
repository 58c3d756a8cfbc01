"""Lookup tables for the synthetic population: names, places, streets.

Names are common US given and family names (of many origins), in rough order
of frequency; the generator weights them by rank so that common names are
common and rare ones still occur. Places are real US cities with their real
area codes and ZIP prefixes, so that an address and a home number agree; the
numbers themselves are drawn from the 555 exchange (see ``population``), never
from a real subscriber range.
"""

from __future__ import annotations

from typing import Final, NamedTuple


def _words(text: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for word in text.split(","):
        word = " ".join(word.split())
        if word:
            seen.setdefault(word, None)
    return tuple(seen)


FEMALE_GIVEN: Final = _words(
    """
    Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen, Lisa, Nancy,
    Betty, Margaret, Sandra, Ashley, Kimberly, Emily, Donna, Michelle, Carol, Amanda, Dorothy, Melissa,
    Deborah, Stephanie, Rebecca, Sharon, Laura, Cynthia, Kathleen, Amy, Angela, Shirley, Anna, Brenda,
    Pamela, Emma, Nicole, Helen, Samantha, Katherine, Christine, Debra, Rachel, Carolyn, Janet, Catherine,
    Maria, Heather, Diane, Ruth, Julie, Olivia, Joyce, Virginia, Victoria, Kelly, Lauren, Christina,
    Joan, Evelyn, Judith, Megan, Andrea, Cheryl, Hannah, Jacqueline, Martha, Gloria, Teresa, Ann, Sara,
    Madison, Frances, Kathryn, Janice, Jean, Abigail, Alice, Judy, Sophia, Grace, Denise, Amber, Doris,
    Marilyn, Danielle, Beverly, Isabella, Theresa, Diana, Natalie, Brittany, Charlotte, Marie, Kayla,
    Alexis, Lori, Ava, Mia, Harper, Amelia, Ella, Avery, Sofia, Camila, Aria, Scarlett, Chloe, Layla,
    Riley, Zoey, Nora, Lily, Eleanor, Addison, Aubrey, Ellie, Stella, Leah, Hazel, Violet, Aurora,
    Savannah, Audrey, Brooklyn, Bella, Claire, Skylar, Lucy, Paisley, Everly, Caroline, Nova, Genesis,
    Emilia, Kennedy, Maya, Willow, Kinsley, Naomi, Aaliyah, Elena, Ariana, Allison, Gabriella, Madelyn,
    Cora, Ruby, Eva, Serenity, Autumn, Adeline, Valentina, Isla, Quinn, Ximena, Guadalupe, Rosa, Yolanda,
    Carmen, Juana, Lucía, Mariana, Daniela, Fernanda, Valeria, Jasmine, Destiny, Tiffany, Crystal,
    Monique, Keisha, Latoya, Tamika, Ebony, Aisha, Imani, Priya, Ananya, Mei, Lin, Hana, Yuki, Ji-woo,
    Min-ji, Thuy, Linh, Ngoc, Fatima, Noor, Leila, Sana, Zara, Amara, Nia, Adaeze, Esperanza, Beatriz,
    Marisol, Alejandra, Lorena, Paula, Irene, Joanne, Rita, Lois, Phyllis, Norma, Peggy, Wanda, Bonnie,
    Tammy, Tracy, Dawn, Connie, Sherry, Erin, Erica, Tina, Holly, Wendy, Vanessa, Melanie, Courtney,
    Brianna, Morgan, Katie, Molly, Jenna, Leslie, Monica, Veronica, Sonia, Gina, Claudia, Cindy, Alicia,
    Yvonne, Renée, Zoë, Mary Ann, Anne-Marie
    """
)

MALE_GIVEN: Final = _words(
    """
    James, Robert, John, Michael, David, William, Richard, Joseph, Thomas, Christopher, Charles, Daniel,
    Matthew, Anthony, Mark, Donald, Steven, Andrew, Paul, Joshua, Kenneth, Kevin, Brian, George, Timothy,
    Ronald, Jason, Edward, Jeffrey, Ryan, Jacob, Gary, Nicholas, Eric, Jonathan, Stephen, Larry, Justin,
    Scott, Brandon, Benjamin, Samuel, Gregory, Alexander, Patrick, Frank, Raymond, Jack, Dennis, Jerry,
    Tyler, Aaron, Jose, Adam, Nathan, Henry, Zachary, Douglas, Peter, Kyle, Noah, Ethan, Jeremy, Walter,
    Christian, Keith, Roger, Terry, Austin, Sean, Gerald, Carl, Harold, Dylan, Arthur, Lawrence, Jordan,
    Jesse, Bryan, Billy, Bruce, Gabriel, Joe, Logan, Alan, Juan, Albert, Willie, Elijah, Wayne, Randy,
    Vincent, Mason, Roy, Ralph, Bobby, Russell, Bradley, Philip, Eugene, Liam, Oliver, Lucas, Levi,
    Sebastian, Mateo, Owen, Theodore, Aiden, Jackson, Luke, Isaac, Grayson, Leo, Julian, Wyatt, Hudson,
    Lincoln, Carter, Jaxon, Asher, Josiah, Hunter, Ezra, Caleb, Nolan, Cameron, Connor, Miles, Elias,
    Adrian, Santiago, Diego, Luis, Carlos, Miguel, Jorge, Pedro, Alejandro, Fernando, Ricardo, Eduardo,
    Javier, Rafael, Manuel, Francisco, Andrés, Hector, Raul, Marcus, Darnell, Jamal, Andre, Tyrone,
    DeShawn, Malik, Terrence, Reginald, Cedric, Raj, Arjun, Rohan, Vikram, Sanjay, Wei, Jun, Hiroshi,
    Kenji, Min-jun, Duc, Minh, Tuan, Omar, Ahmed, Yusuf, Ali, Hassan, Kwame, Chinedu, Emeka, Samir, Ivan,
    Dmitri, Nikolai, Stanley, Leonard, Howard, Ernest, Earl, Melvin, Harry, Fred, Glenn, Martin, Craig,
    Todd, Shawn, Travis, Derek, Curtis, Troy, Marvin, Victor, Tony, Jimmy, Johnny, Danny, Louis,
    Frederick, Clarence, Lee, José, Jean-Luc
    """
)

FAMILY: Final = _words(
    """
    Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, Hernandez, Lopez,
    Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, Perez, Thompson, White,
    Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, Young, Allen, King, Wright, Scott, Torres,
    Nguyen, Hill, Flores, Green, Adams, Nelson, Baker, Hall, Rivera, Campbell, Mitchell, Carter, Roberts,
    Gomez, Phillips, Evans, Turner, Diaz, Parker, Cruz, Edwards, Collins, Reyes, Stewart, Morris, Morales,
    Murphy, Cook, Rogers, Gutierrez, Ortiz, Morgan, Cooper, Peterson, Bailey, Reed, Kelly, Howard, Ramos,
    Kim, Cox, Ward, Richardson, Watson, Brooks, Chavez, Wood, James, Bennett, Gray, Mendoza, Ruiz, Hughes,
    Price, Alvarez, Castillo, Sanders, Patel, Myers, Long, Ross, Foster, Jimenez, Powell, Jenkins, Perry,
    Russell, Sullivan, Bell, Coleman, Butler, Henderson, Barnes, Gonzales, Fisher, Vasquez, Simmons,
    Romero, Jordan, Patterson, Alexander, Hamilton, Graham, Reynolds, Griffin, Wallace, Moreno, West,
    Cole, Hayes, Bryant, Herrera, Gibson, Ellis, Tran, Medina, Aguilar, Stevens, Murray, Ford, Castro,
    Marshall, Owens, Harrison, Fernandez, McDonald, Woods, Washington, Kennedy, Wells, Vargas, Henry,
    Chen, Freeman, Webb, Tucker, Guzman, Burns, Crawford, Olson, Simpson, Porter, Hunter, Gordon, Mendez,
    Silva, Shaw, Snyder, Mason, Dixon, Muñoz, Hunt, Hicks, Holmes, Palmer, Wagner, Black, Robertson, Boyd,
    Rose, Stone, Salazar, Fox, Warren, Mills, Meyer, Rice, Schmidt, Garza, Daniels, Ferguson, Nichols,
    Stephens, Soto, Weaver, Ryan, Gardner, Payne, Grant, Dunn, Kelley, Spencer, Hawkins, Arnold, Pierce,
    Vazquez, Hansen, Peters, Santos, Hart, Bradley, Knight, Elliott, Cunningham, Duncan, Armstrong,
    Hudson, Carroll, Lane, Riley, Andrews, Alvarado, Ray, Delgado, Berry, Perkins, Hoffman, Johnston,
    Matthews, Peña, Richards, Contreras, Willis, Carpenter, Lawrence, Sandoval, Guerrero, George, Chapman,
    Rios, Estrada, Ortega, Watkins, Greene, Nunez, Wheeler, Valdez, Harper, Burke, Larson, Santiago,
    Maldonado, Morrison, Franklin, Carlson, Austin, Dominguez, Carr, Lawson, Jacobs, O'Brien, Lynch,
    Singh, Vega, Bishop, Montgomery, Oliver, Jensen, Harvey, Williamson, Gilbert, Dean, Sims, Espinoza,
    Howell, Li, Wong, Reid, Hanson, Le, McCoy, Garrett, Burton, Fuller, Wang, Weber, Welch, Rojas, Lucas,
    Marquez, Fields, Park, Yang, Little, Banks, Padilla, Day, Walsh, Bowman, Schultz, Luna, Fowler, Mejia,
    Davidson, Acosta, Brewer, May, Holland, Juarez, Newman, Pearson, Curtis, Cortez, Douglas, Schneider,
    Joseph, Barrett, Navarro, Figueroa, Keller, Avila, Wade, Molina, Stanley, Hopkins, Campos, Barnett,
    Bates, Chambers, Caldwell, Beck, Lambert, Miranda, Byrd, Craig, Ayala, Lowe, Frazier, Powers, Neal,
    Leonard, Gregory, Carrillo, Sutton, Fleming, Rhodes, Shelton, Schwartz, Norris, Jennings, Watts,
    Duran, Walters, Cohen, McDaniel, Moran, Parks, Steele, Vaughn, Becker, Holt, DeLeon, Barker, Terry,
    Hale, Leon, O'Connor, De la Cruz, Van Buren, St. John, Nakamura, Tanaka, Yamamoto, Sato, Choi, Pham,
    Hoang, Vu, Huang, Zhang, Liu, Wu, Shah, Desai, Mehta, Kaur, Khan, Hussain, Okafor, Adeyemi, Mensah,
    Kowalski, Novak, Ivanov, Rossi, Russo, Bianchi, Murphy-Sullivan
    """
)

# Familiar forms, recorded by some registrations as a second ("usual") name.
NICKNAMES: Final[dict[str, str]] = {
    "William": "Bill",
    "Robert": "Bob",
    "Richard": "Rick",
    "James": "Jim",
    "Joseph": "Joe",
    "Thomas": "Tom",
    "Michael": "Mike",
    "Christopher": "Chris",
    "Anthony": "Tony",
    "Daniel": "Dan",
    "Matthew": "Matt",
    "Nicholas": "Nick",
    "Alexander": "Alex",
    "Benjamin": "Ben",
    "Samuel": "Sam",
    "Jonathan": "Jon",
    "Edward": "Ed",
    "Timothy": "Tim",
    "Elizabeth": "Liz",
    "Margaret": "Peggy",
    "Katherine": "Kate",
    "Kathleen": "Kathy",
    "Patricia": "Patty",
    "Jennifer": "Jen",
    "Rebecca": "Becky",
    "Deborah": "Debbie",
    "Victoria": "Vicky",
    "Samantha": "Sam",
    "Christina": "Tina",
    "Jacqueline": "Jackie",
    "Abigail": "Abby",
    "Theodore": "Teddy",
    "Francisco": "Paco",
    "Guadalupe": "Lupe",
    "Alejandro": "Alex",
}


class City(NamedTuple):
    name: str
    state: str
    area_codes: tuple[str, ...]
    zip3: str
    weight: float  # roughly the metro's share of the population


CITIES: Final[tuple[City, ...]] = (
    City("New York", "NY", ("212", "646", "718", "917", "347", "929"), "100", 9.0),
    City("Los Angeles", "CA", ("213", "323", "310", "818", "424"), "900", 6.5),
    City("Chicago", "IL", ("312", "773", "872", "708"), "606", 4.5),
    City("Houston", "TX", ("713", "281", "832", "346"), "770", 3.5),
    City("Dallas", "TX", ("214", "469", "972"), "752", 3.4),
    City("Washington", "DC", ("202", "771"), "200", 3.0),
    City("Philadelphia", "PA", ("215", "267", "445"), "191", 3.0),
    City("Miami", "FL", ("305", "786", "645"), "331", 3.0),
    City("Atlanta", "GA", ("404", "678", "470", "770"), "303", 3.0),
    City("Boston", "MA", ("617", "857", "781"), "021", 2.5),
    City("Phoenix", "AZ", ("602", "480", "623"), "850", 2.5),
    City("San Jose", "CA", ("408", "669"), "951", 1.0),
    City("Oakland", "CA", ("510", "341"), "946", 1.2),
    City("Seattle", "WA", ("206", "253", "425"), "981", 2.0),
    City("Minneapolis", "MN", ("612", "651", "763"), "554", 1.8),
    City("San Diego", "CA", ("619", "858"), "921", 1.7),
    City("Tampa", "FL", ("813", "727"), "336", 1.6),
    City("Denver", "CO", ("303", "720"), "802", 1.5),
    City("Baltimore", "MD", ("410", "443", "667"), "212", 1.4),
    City("St. Louis", "MO", ("314", "636"), "631", 1.4),
    City("Orlando", "FL", ("407", "689"), "328", 1.3),
    City("Charlotte", "NC", ("704", "980"), "282", 1.3),
    City("San Antonio", "TX", ("210", "726"), "782", 1.3),
    City("Portland", "OR", ("503", "971"), "972", 1.2),
    City("Sacramento", "CA", ("916", "279"), "958", 1.2),
    City("Pittsburgh", "PA", ("412", "878"), "152", 1.2),
    City("Austin", "TX", ("512", "737"), "787", 1.2),
    City("Las Vegas", "NV", ("702", "725"), "891", 1.1),
    City("Cincinnati", "OH", ("513",), "452", 1.1),
    City("Kansas City", "MO", ("816",), "641", 1.1),
    City("Columbus", "OH", ("614", "380"), "432", 1.1),
    City("Indianapolis", "IN", ("317", "463"), "462", 1.0),
    City("Cleveland", "OH", ("216", "440"), "441", 1.0),
    City("Nashville", "TN", ("615", "629"), "372", 1.0),
    City("Newark", "NJ", ("973", "862"), "071", 1.0),
    City("Jacksonville", "FL", ("904",), "322", 0.8),
    City("Raleigh", "NC", ("919", "984"), "276", 0.7),
    City("Milwaukee", "WI", ("414", "262"), "532", 0.8),
    City("Oklahoma City", "OK", ("405",), "731", 0.7),
    City("Memphis", "TN", ("901",), "381", 0.7),
    City("Louisville", "KY", ("502",), "402", 0.7),
    City("Richmond", "VA", ("804",), "232", 0.7),
    City("New Orleans", "LA", ("504",), "701", 0.6),
    City("Salt Lake City", "UT", ("801", "385"), "841", 0.6),
    City("Hartford", "CT", ("860", "959"), "061", 0.6),
    City("Buffalo", "NY", ("716",), "142", 0.6),
    City("Birmingham", "AL", ("205", "659"), "352", 0.5),
    City("Detroit", "MI", ("313", "248"), "482", 2.0),
    City("Providence", "RI", ("401",), "029", 0.5),
    City("Tucson", "AZ", ("520",), "857", 0.5),
    City("Fresno", "CA", ("559",), "937", 0.5),
    City("Albuquerque", "NM", ("505",), "871", 0.5),
    City("Omaha", "NE", ("402", "531"), "681", 0.5),
    City("El Paso", "TX", ("915",), "799", 0.4),
    City("Honolulu", "HI", ("808",), "968", 0.4),
    City("Boise", "ID", ("208", "986"), "837", 0.4),
    City("Des Moines", "IA", ("515",), "503", 0.4),
    City("Spokane", "WA", ("509",), "992", 0.3),
    City("Anchorage", "AK", ("907",), "995", 0.2),
)

STREETS: Final = _words(
    """
    Main, Oak, Pine, Maple, Cedar, Elm, Washington, Lake, Hill, Park, Walnut, Sunset, Lincoln, Jackson,
    Church, Willow, Highland, River, Spring, Ridge, Meadow, Forest, Chestnut, Franklin, Jefferson,
    Madison, Adams, Center, Mill, Valley, Broadway, Cherry, Sycamore, Hickory, Magnolia, Dogwood, Birch,
    Aspen, Laurel, Juniper, Mission, Orchard, Prospect, Summit, Union, Vine, Greenwood, Fairview,
    Lakeview, Riverside, Martin Luther King Jr, Cypress, Heritage, Sierra Vista, El Camino, Harbor,
    Mountain View, Country Club, Primrose, Bay
    """
)
STREET_SUFFIXES: Final = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pl", "Ter", "Cir", "Pkwy")
UNIT_PREFIXES: Final = ("Apt", "Apt", "Apt", "Unit", "#", "Ste")

EMAIL_DOMAINS: Final = ("example.com", "example.org", "example.net", "mail.example", "inbox.example")
